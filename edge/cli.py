"""``splitnas-edge``: serve a part of an exported network, or run its head against a server and time it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from db.command_line import console_script
from edge.transports import TRANSPORTS, parse_address

app = typer.Typer(help="Run an exported split network (nas export) for real: one part per process or device.",
                  no_args_is_help=True)
entry_point = console_script(app)

DirArgument = Annotated[Path, typer.Argument(help="an export directory (nas export JOB --out DIR)")]
TransportOption = Annotated[str, typer.Option(
    "--transport", help=f"{' or '.join(TRANSPORTS)}: tcp retransmits lost packets; udp decodes what arrived, "
                        "lost datagrams' elements as zeros")]


@app.command()
def serve(
    directory: DirArgument,
    part: Annotated[int, typer.Option(help="the part to serve (1 is the first after the head)")] = 1,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on (0: any free one, printed)")] = 9000,
    transport: TransportOption = "tcp",
    forward: Annotated[str | None, typer.Option(
        help="HOST:PORT of the next part's server (every part but the tail)")] = None,
) -> None:
    """Load a part (ONNX Runtime), then decode, run and answer (or forward) every payload that arrives."""
    from edge.server import serve as serve_part
    from edge.transports import get_transport

    get_transport(transport)

    def ready(bound_host: str, bound_port: int) -> None:
        print(f"serving part {part} of {directory} on {transport}://{bound_host}:{bound_port}", flush=True)

    try:
        serve_part(directory, part, host=host, port=port, transport=transport,
                   forward=parse_address(forward) if forward else None, ready=ready)
    except KeyboardInterrupt:
        pass


@app.command()
def run(
    directory: DirArgument,
    server: Annotated[str, typer.Option(help="HOST:PORT of part 1's server (splitnas-edge serve)")],
    requests: Annotated[int, typer.Option(help="timed requests (after one warm-up)")] = 20,
    transport: TransportOption = "tcp",
    loss: Annotated[float, typer.Option(
        help="EMULATED loss: the sender drops each UDP datagram with this probability before sending it (this "
             "kernel has no netem); no effect over tcp")] = 0.0,
    seed: Annotated[int, typer.Option(help="seed of the inputs and of the emulated loss")] = 0,
    inputs: Annotated[Path | None, typer.Option(
        help="send these images instead of random ones: an .npz with 'images' (N x C x H x W, normalized as in "
             "training) and optionally 'labels'; timed request k sends image k % N")] = None,
    answers: Annotated[Path | None, typer.Option(
        help="write the class each timed request was answered with, in order, to this .npy file")] = None,
    upload: Annotated[str | None, typer.Option(help="service URL: POST the run to URL/e2e")] = None,
    token: Annotated[str | None, typer.Option(help="bearer token for --upload (splitnas-api token create)")] = None,
    db: Annotated[str | None, typer.Option("--db", help="store the run in this database instead")] = None,
    json: Annotated[bool, typer.Option("--json", help="print the run's record as JSON on stdout")] = False,
) -> None:
    """Run the head here, send each payload to the server, and print predicted vs measured p50/p90."""
    import numpy as np

    from edge.report import format_report
    from edge.runner import RunError, answers_of, check_run_options, load_inputs
    from edge.runner import run as run_split
    from edge.transports import get_transport
    from edge.upload import store
    from edge.upload import upload as upload_run

    address = parse_address(server)
    get_transport(transport)
    check_run_options(requests, loss)
    if upload is not None and token is None:
        raise RunError("--upload needs --token (splitnas-api token create NAME)")
    images, labels = load_inputs(inputs) if inputs is not None else (None, None)
    result = run_split(directory, address, requests=requests, transport=transport, loss=loss, seed=seed,
                       inputs=images)
    print(format_report(result.record, predicted_at_measured_mbps=result.predicted_at_measured_mbps),
          file=sys.stderr)
    classes = answers_of(result)
    if labels is not None:
        expected = labels[np.arange(len(classes)) % len(labels)]
        print(f"  top-1 accuracy of the answers: {(classes == expected).mean():.4f} "
              f"({int((classes == expected).sum())} of {len(classes)} labelled requests)", file=sys.stderr)
    if answers is not None:
        np.save(answers, classes)
    if upload is not None and token is not None:
        print(f"uploaded as e2e run {upload_run(result.record, upload, token)} to {upload}", file=sys.stderr)
    if db is not None:
        print(f"stored as e2e run {store(result.record, db)}", file=sys.stderr)
    if json:
        print(result.record.model_dump_json())
