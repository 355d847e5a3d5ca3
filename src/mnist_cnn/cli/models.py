"""`mnist-cnn models [NAME | --arch LAYERS]`: the catalogue, or one network layer by layer.

The listing is data (no Keras): it answers in a fraction of a second."""

from __future__ import annotations

from mnist_cnn.cli.common import (
    PROG,
    add_command,
    load_keras,
    print_json,
)


def run(args) -> None:
    if args.name or args.arch is not None:
        _show_network(args)
        return
    from mnist_cnn.models import (
        catalogue,  # the listing is data: no Keras (answers in a fraction of a second)
    )

    rows = [
        {**entry.describe(), "parameters": entry.parameters} for entry in catalogue.ENTRIES.values()
    ]
    if args.json:
        print_json(rows)
        return
    header = f"{'name':<24} {'params':>8} {'epochs':>6} {'batch':>5} {'loss':<11} "
    print(header + f"{'validation':<45} published")
    for row in rows:
        recipe = row["recipe"]
        print(
            f"{row['name']:<24} {row['parameters']:>8,} {recipe['epochs']:>6} "
            f"{recipe['batch_size']:>5} {recipe['loss']:<11} {row['validation']:<45} "
            f"{row['published']}"
        )
    print("\nValidation never uses the test set; where a tutorial did, a split of train stands in.")
    print("'mnist-cnn models NAME' shows a network layer by layer; --arch LAYERS shows yours.")


def _show_network(args) -> None:
    """One network layer by layer, a catalogue entry's or a pasted list's, without training."""
    from mnist_cnn.models import layer_list

    if args.arch is not None and layer_list.python_file(args.arch) is None:
        layer_list.parse(args.arch)  # a bad list is answered before Keras loads
    if args.name is not None:
        from mnist_cnn.models import catalogue

        catalogue.get_entry(args.name)  # so is a wrong name
    load_keras()
    from mnist_cnn.models import architecture
    from mnist_cnn.models.settings import as_flags

    entry = architecture.entry_for(args.name, args.arch)
    model = entry.build()
    shown = {
        **entry.describe(),
        "parameters": int(model.count_params()),
        "layers": architecture.describe_layers(model),
    }
    if args.json:
        print_json(shown)
        return
    print(f"{entry.name}: {entry.summary}")
    print(f"{'layer':<22} {'output shape':<18} {'parameters':>10}")
    for row in shown["layers"]:
        shape = "(" + ", ".join(map(str, row["output_shape"])) + ")"
        print(f"{row['layer']:<22} {shape:<18} {row['parameters']:>10,}")
    print(f"{'total':<41} {shown['parameters']:>10,}")
    print(f"trains with (change any of these flags): {as_flags(shown['recipe'])}")


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "models",
        "list the catalogue, or show one network layer by layer (yours with --arch)",
        f"{PROG} models\n  {PROG} models keras-example\n"
        f"  {PROG} models --arch \"Conv2D(32, (3,3), activation='relu'), MaxPooling2D((2,2)), "
        f"Flatten(), Dense(10, activation='softmax')\"",
        run,
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="a catalogue entry to show")
    p.add_argument("--arch", metavar="LAYERS|FILE.py", help="your network, as for train --arch")
