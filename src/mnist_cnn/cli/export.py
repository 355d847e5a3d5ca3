"""`mnist-cnn export`: a model to ONNX, SavedModel or TFLite, checked for parity."""

from __future__ import annotations

from mnist_cnn.cli.common import (
    PROG,
    add_command,
    add_data_dir_option,
    load_keras,
    print_json,
)


def run(args) -> None:
    load_keras(args.model)
    from mnist_cnn.inference.export import export_model

    target, parity = export_model(args.model, args.format, args.out, args.data_dir)
    if args.json:
        print_json({"format": args.format, "path": str(target), "parity": parity.to_dict()})
        return
    print(
        f"parity on {parity.digits:,} test digits: max probability difference "
        f"{parity.max_difference:.2e} (allowed 1e-04), {parity.disagreements} digits differ"
    )
    if parity.trained_max_difference is not None:
        print(
            f"  (float32 export against the mixed-precision model as trained: "
            f"{parity.trained_max_difference:.2e}, {parity.trained_disagreements} digits differ)"
        )
    print(f"exported {args.format}: {target}")


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "export",
        "export a model to ONNX, SavedModel or TFLite, checked against Keras on 1,000 digits",
        f"{PROG} export runs/fast-20261121-101500 --format onnx",
        run,
    )
    p.add_argument("model", metavar="RUN_DIR|MODEL")
    p.add_argument("--format", required=True, choices=["onnx", "saved_model", "tflite"])
    p.add_argument(
        "--out",
        help="where to write it (default: model.onnx, saved_model/ or model.tflite "
        "beside the model)",
    )
    add_data_dir_option(p, "data folder for the parity digits")
