"""The streaming classifier: smoothing and segments on known posteriors, and a timeline of a
generated recording of three emotions through the device front-end and TFLite Micro."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf

from data_prep.features import fix_length, log_mel
from keras_hrf.cli import main
from keras_hrf.device import stream

#: Held-out takes per emotion to choose the recording's utterances from, and how many to use.
CANDIDATE_TAKES = range(20, 30)
TAKES_PER_SEGMENT = 3


# ------------------------------------------------------------------------ smoothing, segments


def test_median_smoothing_removes_a_single_outlier_and_keeps_steps():
    p = np.array([[0.9, 0.1]] * 4 + [[0.2, 0.8]] + [[0.9, 0.1]] * 2 + [[0.1, 0.9]] * 4)
    out = stream.smooth_posteriors(p, 3, "median")
    assert out.argmax(1).tolist() == [0] * 7 + [1] * 4
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(stream.smooth_posteriors(p, 1), p.astype(np.float32))


def test_ema_smoothing_is_the_firmware_recursion():
    p = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    out = stream.smooth_posteriors(p, 3, "ema")  # alpha = 2 / (3 + 1) = 0.5
    np.testing.assert_allclose(out, [[1.0, 0.0], [0.5, 0.5], [0.25, 0.75]])
    with pytest.raises(ValueError, match="smooth"):
        stream.smooth_posteriors(p, 0)
    with pytest.raises(ValueError, match="smoothing"):
        stream.smooth_posteriors(p, 3, "mean")


def test_segments_put_boundaries_between_window_centres():
    smoothed = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    centres = np.array([1.5, 2.0, 2.5, 3.0])
    segs = stream.segments_from(smoothed, centres, ["a", "b"], duration=4.2)
    assert [(s.label, s.start, s.end, s.windows) for s in segs] == [
        ("a", 0.0, 2.25, 2),
        ("b", 2.25, 4.2, 2),
    ]
    assert segs[0].confidence == pytest.approx(0.7) and segs[1].confidence == pytest.approx(0.8)


# --------------------------------------------------------------------------- a real timeline


@pytest.fixture(scope="module")
def recording(stream_model):
    """Three segments of distinct emotions, each made of held-out takes, and their boundaries.

    Per emotion, the takes whose whole-utterance features the *float Keras model* classifies
    right with the largest margin: chosen on the training path, never on the stream's output,
    so the timeline can still come out wrong if the device front-end, the quantization, the
    windowing, TFLM or the smoothing is broken.
    """
    m = stream_model
    x_norm = {}
    for emotion in m.labels:
        for take in CANDIDATE_TAKES:
            feats = fix_length(log_mel(m.utterance(emotion, take), m.params), m.params)
            x_norm[emotion, take] = m.normalizer.transform(feats)
    keys = list(x_norm)
    logits = m.model.predict(np.stack([x_norm[k] for k in keys]), verbose=0)
    order = ["sad", "angry", "fearful"]  # every boundary between different emotions
    pieces, bounds, t = [], [], 0.0
    for emotion in order:
        c = m.labels.index(emotion)
        margin = {
            k: logits[i, c] - np.delete(logits[i], c).max()
            for i, k in enumerate(keys)
            if k[0] == emotion
        }
        best = sorted(margin, key=margin.get, reverse=True)[:TAKES_PER_SEGMENT]
        assert all(margin[k] > 0 for k in best), f"the model cannot classify {emotion} at all"
        for key in sorted(best):
            pieces.append(m.utterance(*key))
            t += pieces[-1].size / m.params.sample_rate
        bounds.append(t)
    return np.concatenate(pieces), order, bounds


def _check_timeline(segments, order, bounds, tolerance):
    assert [s.label for s in segments] == order, [(s.label, s.start, s.end) for s in segments]
    errors = [seg.end - end for seg, end in zip(segments[:-1], bounds[:-1], strict=True)]
    print(f"boundary errors (s): {np.round(errors, 2).tolist()}, tolerance {tolerance:.2f}")
    assert max(abs(e) for e in errors) <= tolerance


def test_stream_timeline_matches_the_generated_utterances(stream_model, recording):
    signal, order, bounds = recording
    result = stream.classify_stream(signal, stream_model.export_dir, hop=0.25, smooth=3)
    assert result.window == pytest.approx(1.0 + (512 - 160) / 16000)
    rows = 1 + (len(signal) - 512) // 160
    assert result.hop == 0.25 and len(result.centres) == 1 + (rows - 100) // 25
    # A window whose centre is within half a window of a boundary holds both emotions and may
    # go either way, and the boundary lies between two window centres: so the timeline can
    # locate it to within half a window plus half a hop.
    tolerance = result.window / 2 + result.hop / 2
    _check_timeline(result.segments, order, bounds, tolerance)
    assert result.segments[0].start == 0.0
    assert result.segments[-1].end == pytest.approx(len(signal) / 16000)
    assert min(s.confidence for s in result.segments) > 0.6
    print("\n" + result.to_markdown())
    # The firmware's causal moving average gives the same segments, later by its lag (about
    # (smooth - 1) / 2 windows) - still within half a window plus a hop.
    ema = stream.classify_stream(signal, stream_model.export_dir, hop=0.25, smoothing="ema")
    _check_timeline(ema.segments, order, bounds, tolerance + result.hop)


def test_stream_cli_prints_the_timeline(stream_model, recording, tmp_path, capsys):
    signal, order, _ = recording
    wav = tmp_path / "three_emotions.wav"
    sf.write(str(wav), signal, 16000, subtype="PCM_16")
    assert main(["stream", str(wav), "--model", str(stream_model.export_dir), "--smooth", "3"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^\| ([\d.]+) \| ([\d.]+) \| (\w+) \| ([\d.]+) \| (\d+) \|$", out, re.M)
    assert [r[2] for r in rows] == order, out
    assert "| start (s) | end (s) | label | confidence | windows |" in out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["stream", "/nonexistent.wav", "--model", "{model}"], "does not exist"),
        (["stream", "{wav}", "--model", "/nonexistent"], "does not exist"),
        (["stream", "{wav}", "--model", "{model}", "--hop", "0"], "hop must be"),
        (["stream", "{wav}", "--model", "{model}", "--smooth", "0"], "smooth must be"),
        (["stream", "{wav}", "--model", "{wav_dir}"], "model_meta.json"),
    ],
)
def test_stream_cli_errors_exit_2_with_one_line(argv, match, stream_model, tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(str(wav), 0.1 * np.sin(np.arange(16000) / 5.0), 16000, subtype="PCM_16")
    fill = {"model": stream_model.export_dir, "wav": wav, "wav_dir": tmp_path}
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 2
