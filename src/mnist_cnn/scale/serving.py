"""Ray Serve: `mnist-cnn serve MODEL --address ADDR --replicas N`, serving past one machine.

The app is the one `mnist-cnn serve` runs on one machine (`server.app_from_environment`:
the page, our API and every other route `create_app` makes), deployed as N replicas of one
Ray Serve deployment, each with its own Classifier on one CPU. Ray Serve's proxy runs on the
head node only: one port there, which several nodes on one machine could not each bind.
It sends each request to a live replica; a replica lost with its node is started again by
Serve's controller wherever a CPU is free, and meanwhile the others answer.

Every node must see the model at the same path (`check_nodes` asks each one first).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from mnist_cnn.errors import first_line
from mnist_cnn.scale import cluster

APP_NAME = "mnist-cnn"
# Ray Serve's end-to-end limit on a request (HTTPOptions.request_timeout_s): past it the
# caller gets a 408 rather than waiting on a replica that is gone or stuck.
REQUEST_TIMEOUT_S = 10.0
CPUS_PER_REPLICA = 1


def deployment(settings: dict, replicas: int):
    """The Serve deployment: `replicas` copies of our FastAPI app, each built on its replica
    from `settings` (what `server.serve` passes its workers in $MNIST_CNN_SERVE)."""
    from ray import serve

    from mnist_cnn.server.app import SETTINGS_ENV

    env = {  # our settings as the command has them (--model-name's too), and the app's
        **{key: value for key, value in os.environ.items() if key.startswith("MNIST_CNN_")},
        **cluster.worker_env(CPUS_PER_REPLICA),
        SETTINGS_ENV: json.dumps(settings),
    }
    ingress = serve.ingress(replica_app)()  # the app is built on each replica
    return serve.deployment(
        ingress,
        name=APP_NAME,
        num_replicas=replicas,
        ray_actor_options={"num_cpus": CPUS_PER_REPLICA, "runtime_env": {"env_vars": env}},
    )


def replica_app():
    """Built on each replica, from $MNIST_CNN_SERVE: our FastAPI app and its Classifier."""
    from mnist_cnn.server.app import app_from_environment

    _internal_server_on_node_address()
    return app_from_environment()


def _internal_server_on_node_address() -> None:
    """Ray Serve (2.60) starts a gRPC server in every replica for calls between deployments
    on "[::]:0", every interface of the machine, with no setting to change it (Ray issue
    64544). Bind it to this node's own Ray address instead, the one other nodes reach it at
    (127.0.0.1 on a loopback cluster). A Ray without that hook is left as it is."""
    import ray
    from ray.serve._private import replica

    bind = getattr(replica, "add_port_to_grpc_server", None)
    if bind is None or getattr(bind, "node_only", False):
        return
    node = ray.util.get_node_ip_address()
    host = f"[{node}]" if ":" in node else node

    def node_only(server, address: str):
        return bind(
            server,
            f"{host}:" + address.removeprefix("[::]:") if address.startswith("[::]:") else address,
        )

    node_only.node_only = True
    replica.add_port_to_grpc_server = node_only


def head_ip() -> str:
    """The head node's address, where the proxy listens."""
    import ray

    for node in ray.nodes():
        if node["Alive"] and "node:__internal_head__" in node["Resources"]:
            return node["NodeManagerAddress"]
    return cluster.LOOPBACK


def serve_on_cluster(
    address: str,
    model: Path,
    host: str,
    port: int,
    replicas: int,
    settings: dict,
    ready: Callable[[str, cluster.Cluster], None],
) -> None:
    """Deploy the app on the Ray cluster at `address`, call `ready(url, cluster)` once every
    replica answers, and keep it up until Ctrl-C (or SIGTERM); then tear it down."""
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # our own line says it is up
    with cluster.connected(address, CPUS_PER_REPLICA) as where:
        cluster.check_nodes(None, None, None, see=[model])
        from ray import serve

        serve.start(
            proxy_location="HeadOnly",
            logging_config={"log_level": "WARNING"},
            http_options={"host": host, "port": port, "request_timeout_s": REQUEST_TIMEOUT_S},
        )
        # Ctrl-C and SIGTERM both tear the deployment down (SIGINT too where a shell
        # started us in the background with it ignored).
        previous = signal.signal(signal.SIGTERM, _interrupt), signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            try:
                serve.run(deployment(settings, replicas).bind(), name=APP_NAME, route_prefix="/")
            except RuntimeError as exc:
                raise cluster.ClusterError(
                    f"the replicas did not start on {address} ({first_line(exc)})"
                ) from None
            shown = head_ip() if host in ("0.0.0.0", "::", "") else host
            ready(f"http://{shown}:{port}/", where)
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous[0])
            signal.signal(signal.SIGINT, previous[1])
            tear_down(serve)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def tear_down(serve) -> None:
    """Delete our application; stop Serve itself (its controller and proxy) when nothing
    else runs on it."""
    serve.delete(APP_NAME)
    if not serve.status().applications:
        serve.shutdown()
