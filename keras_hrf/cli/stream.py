"""``keras-hrf stream``: an emotion timeline of a long recording, computed as the firmware would
(CMSIS-DSP front-end twin, int8 model under TFLite Micro)."""

from __future__ import annotations

from pathlib import Path

from keras_hrf.cli.common import add_parser

EPILOG = """
    examples:
      keras-hrf stream meeting.wav --model runs/x/device
      keras-hrf stream call.flac --model device/ --hop 0.25 --smooth 5
      keras-hrf stream call.flac --model device/ --smoothing ema --precision q15
    """


def stream_command_parser(sub):
    p = add_parser(
        sub,
        "stream",
        "emotion timeline of a long recording: sliding windows through the device front-end "
        "(CMSIS-DSP) and the int8 model under TFLite Micro",
        EPILOG,
    )
    p.add_argument("audio", help="an audio file (any format and rate libsndfile reads)")
    p.add_argument("--model", required=True, help="export folder (model_int8.tflite + meta)")
    p.add_argument("--hop", type=float, default=0.5, help="seconds between windows (default 0.5)")
    p.add_argument(
        "--smooth", type=int, default=3, help="windows of posterior smoothing (1 = none)"
    )
    p.add_argument(
        "--smoothing",
        choices=["median", "ema"],
        default="median",
        help="centred running median (default) or the firmware's causal moving average",
    )
    p.add_argument(
        "--precision",
        choices=["f32", "q15"],
        default="f32",
        help="device front-end: arm_mfcc_f32 (default) or the fixed-point arm_mfcc_q15",
    )
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    from keras_hrf.device.stream import stream_file

    if not Path(args.audio).is_file():
        raise FileNotFoundError(f"audio file {args.audio} does not exist")
    if not Path(args.model).is_dir():
        raise FileNotFoundError(
            f"model folder {args.model} does not exist; pass an export folder (keras-hrf convert)"
        )
    result = stream_file(
        args.audio,
        args.model,
        hop=args.hop,
        smooth=args.smooth,
        smoothing=args.smoothing,
        precision=args.precision,
    )
    print(
        f"{args.audio}: {result.duration:.2f} s, {len(result.centres)} window(s) of "
        f"{result.window:.2f} s every {result.hop:.2f} s, {result.smoothing} smoothing over "
        f"{result.smooth}, {args.precision} front-end"
    )
    print(result.to_markdown())
    return 0
