"""The Open Inference Protocol (V2) REST API, driven by a real V2 client: `tritonclient[http]`
(pinned in scripts/requirements-dev.txt), against the release build of the API.

A V2 answer must be exactly what `/predict` answers for the same rows: the same class index and
the same float32 probabilities, for every held-out row of samples.csv, with tensors in JSON and in
the binary tensor data extension, FP32 and FP64, in one batch and one row at a time.

Bad requests are sent with `requests` (the client refuses to build most of them): each gets the
status the protocol gives it and a message naming what is wrong, is counted in
`inference_errors_total` for its route, and leaves the server answering.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import tomllib

import numpy as np
import pytest
import requests
import tritonclient.http as httpclient
import yaml
from conftest import MANIFEST, HeldOut
from harness import MODEL_DIR, ROOT
from tritonclient.utils import InferenceServerException

MODEL = MANIFEST["name"]
VERSION = MANIFEST["version"]
INPUT = MANIFEST["input"]["name"]
LABEL = MANIFEST["outputs"]["label"]
PROBABILITIES = MANIFEST["outputs"]["probabilities"]
WIDTH = len(MANIFEST["features"])
CLASSES = MANIFEST["classes"]
NUMPY_DTYPE = {"FP32": np.float32, "FP64": np.float64}
BASE_CONFIG = ROOT / "crates" / "inference-api" / "configuration" / "base.yaml"
INFER_ROUTE = "/v2/models/{name}/infer"
# The route template of the versioned path, whatever its placeholders are called.
VERSIONED_INFER_ROUTE = re.compile(r"/v2/models/\{\w+\}/versions/\{\w+\}/infer")


@pytest.fixture(scope="module")
def client(api):
    with httpclient.InferenceServerClient(api.hostport, network_timeout=30.0) as c:
        yield c


def crate_version() -> str:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    return cargo["workspace"]["package"]["version"]


def infer_input(rows: np.ndarray, datatype: str, binary: bool) -> httpclient.InferInput:
    tensor = httpclient.InferInput(INPUT, list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows.astype(NUMPY_DTYPE[datatype]), binary_data=binary)
    return tensor


def assert_same_as_predict(result, held_out: HeldOut, indices: list[int]) -> None:
    """The V2 outputs for `indices` (in that order) are exactly `/predict`'s answers."""
    labels = result.as_numpy(LABEL)
    probabilities = result.as_numpy(PROBABILITIES)
    assert labels is not None and probabilities is not None, result.get_response()
    assert labels.dtype == np.int64 and labels.shape == (len(indices),)
    assert probabilities.dtype == np.float32 and probabilities.shape == (len(indices), len(CLASSES))
    wrong = []
    for out, row in enumerate(indices):
        want_probabilities = np.array(held_out.probabilities[row], dtype=np.float32)
        if labels[out] != held_out.class_index[row] or not np.array_equal(probabilities[out], want_probabilities):
            wrong.append(f"row {row}: V2 label {labels[out]} probabilities {probabilities[out].tolist()}, "
                         f"/predict class_index {held_out.class_index[row]} probabilities {want_probabilities.tolist()}")
    assert not wrong, f"{len(wrong)} of {len(indices)} rows differ from /predict:\n" + "\n".join(wrong[:10])


def assert_output_encoding(result, binary: bool) -> None:
    """Every output came as binary data after the JSON header, or as `data` inside it."""
    for output in result.get_response()["outputs"]:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if binary:
            assert size is not None and "data" not in output, output
        else:
            assert size is None and "data" in output, output


# ---------------------------------------------------------------------- health and metadata


def test_server_is_live_and_ready(client):
    assert client.is_server_live()
    assert client.is_server_ready()


def test_server_metadata_names_the_binary_tensor_extension(api, client):
    meta = client.get_server_metadata()
    # The service's own name, as `GET /` gives it.
    assert meta["name"] == requests.get(f"{api.url}/", timeout=5).json()["service"] == "inference-api"
    assert meta["version"] == crate_version()
    assert "binary_tensor_data" in meta["extensions"]


def test_model_is_ready_by_name_and_by_version(client):
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, VERSION)
    assert not client.is_model_ready("no-such-model")
    assert not client.is_model_ready(MODEL, "9.9.9")


@pytest.mark.parametrize("version", ["", VERSION], ids=["latest", "versioned"])
def test_model_metadata_describes_the_manifest(client, version):
    meta = client.get_model_metadata(MODEL, version)
    assert meta["name"] == MODEL
    assert meta["versions"] == [VERSION]
    assert meta["platform"] == "onnx_onnxv1"
    assert meta["inputs"] == [{"name": INPUT, "datatype": "FP32", "shape": [-1, WIDTH]}]
    assert meta["outputs"] == [
        {"name": LABEL, "datatype": "INT64", "shape": [-1]},
        {"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, len(CLASSES)]},
    ]


def test_metadata_of_an_unknown_model_is_a_404_naming_it(client):
    with pytest.raises(InferenceServerException) as e:
        client.get_model_metadata("no-such-model")
    assert e.value.status() == "404"
    assert "no-such-model" in e.value.message()


# ---------------------------------------------------------------------- inference


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
@pytest.mark.parametrize("binary_in", [False, True], ids=["json-in", "binary-in"])
@pytest.mark.parametrize("binary_out", [False, True], ids=["json-out", "binary-out"])
def test_all_held_out_rows_in_one_batch_match_predict(client, held_out, datatype, binary_in, binary_out):
    rows = np.array(held_out.rows)
    # No `outputs` is the client's default: it then asks for every output in binary
    # (`binary_data_output`); JSON outputs are asked for by name.
    outputs = None if binary_out else [httpclient.InferRequestedOutput(name, binary_data=False)
                                       for name in (LABEL, PROBABILITIES)]
    result = client.infer(MODEL, [infer_input(rows, datatype, binary_in)], outputs=outputs)
    assert_output_encoding(result, binary_out)
    assert_same_as_predict(result, held_out, list(range(len(rows))))


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_rows_one_at_a_time_match_predict(client, held_out, binary):
    sample = list(range(0, len(held_out.rows), 10))
    for row in sample:
        one = np.array([held_out.rows[row]])
        outputs = [httpclient.InferRequestedOutput(name, binary_data=binary) for name in (LABEL, PROBABILITIES)]
        result = client.infer(MODEL, [infer_input(one, "FP32", binary)], model_version=VERSION, outputs=outputs)
        assert_output_encoding(result, binary)
        assert_same_as_predict(result, held_out, [row])


def test_outputs_select_only_probabilities(client, held_out):
    rows = np.array(held_out.rows[:5])
    result = client.infer(MODEL, [infer_input(rows, "FP32", True)],
                          outputs=[httpclient.InferRequestedOutput(PROBABILITIES)])
    assert [o["name"] for o in result.get_response()["outputs"]] == [PROBABILITIES]
    assert result.as_numpy(LABEL) is None
    want = np.array(held_out.probabilities[:5], dtype=np.float32)
    np.testing.assert_array_equal(result.as_numpy(PROBABILITIES), want)


def test_response_names_the_model_and_echoes_the_request_id(client, held_out):
    result = client.infer(MODEL, [infer_input(np.array(held_out.rows[:1]), "FP32", False)],
                          request_id="v2-client-42")
    response = result.get_response()
    assert response["id"] == "v2-client-42"
    assert response["model_name"] == MODEL
    assert response["model_version"] == VERSION


def test_client_sees_an_unknown_model_as_a_404_naming_it(client, held_out):
    with pytest.raises(InferenceServerException) as e:
        client.infer("no-such-model", [infer_input(np.array(held_out.rows[:1]), "FP32", True)])
    assert e.value.status() == "404"
    assert "no-such-model" in e.value.message()


# ---------------------------------------------------------------------- bad requests


def json_body(inputs: list[dict], **extra) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


def binary_body(header: dict, tensor: bytes) -> tuple[bytes, dict]:
    """A binary-extension body: the JSON header, then the tensor bytes."""
    head = json.dumps(header).encode()
    return head + tensor, {"Inference-Header-Content-Length": str(len(head))}


FIRST_ROW = [float(v) for v in (MODEL_DIR / "samples.csv").read_text().splitlines()[1].split(",")[:-1]]
ONE_ROW_FP32 = struct.pack(f"<{WIDTH}f", *FIRST_ROW)
GOOD_INPUT = {"name": INPUT, "datatype": "FP32", "shape": [1, WIDTH], "data": FIRST_ROW}


def tensor(**changes) -> dict:
    return {**GOOD_INPUT, **changes}


# (id, path under /v2/models/, body, extra headers, status, words the message must contain: a
# tuple is one of its words)
BAD_REQUESTS = [
    ("wrong datatype", f"{MODEL}/infer", json_body([tensor(datatype="INT32")]), {}, 400, ["INT32", "FP32"]),
    ("shape disagrees with the data length", f"{MODEL}/infer", json_body([tensor(shape=[2, WIDTH])]), {}, 400,
     ["shape", str(2 * WIDTH)]),
    ("row width is not the model's", f"{MODEL}/infer", json_body([tensor(shape=[1, WIDTH - 1], data=FIRST_ROW[:-1])]),
     {}, 400, [str(WIDTH), str(WIDTH - 1)]),
    ("negative shape", f"{MODEL}/infer", json_body([tensor(shape=[-1, WIDTH])]), {}, 400, ["shape", "negative"]),
    ("huge shape", f"{MODEL}/infer", json_body([tensor(shape=[2**62, WIDTH])]), {}, 400, ["shape", str(2**62)]),
    ("shape whose product overflows", f"{MODEL}/infer", json_body([tensor(shape=[2**40, 2**40])]), {}, 400,
     ["shape", str(2**40)]),
    ("unknown input name", f"{MODEL}/infer", json_body([tensor(name="pixels")]), {}, 400, ["pixels"]),
    ("unknown output name", f"{MODEL}/infer", json_body([GOOD_INPUT], outputs=[{"name": "logits"}]), {}, 400,
     ["logits"]),
    ("malformed JSON", f"{MODEL}/infer", b'{"inputs": [', {}, 400, ["JSON"]),
    ("binary_data_size larger than the body", f"{MODEL}/infer",
     *binary_body({"inputs": [{"name": INPUT, "datatype": "FP32", "shape": [2, WIDTH],
                               "parameters": {"binary_data_size": 2 * len(ONE_ROW_FP32)}}]}, ONE_ROW_FP32),
     400, ["binary_data_size", str(2 * len(ONE_ROW_FP32))]),
    ("binary_data_size disagrees with the shape", f"{MODEL}/infer",
     *binary_body({"inputs": [{"name": INPUT, "datatype": "FP32", "shape": [1, WIDTH],
                               "parameters": {"binary_data_size": len(ONE_ROW_FP32) - 4}}]}, ONE_ROW_FP32[:-4]),
     400, ["binary_data_size", str(len(ONE_ROW_FP32) - 4), str(len(ONE_ROW_FP32))]),
    ("header length past the end of the body", f"{MODEL}/infer",
     json_body([GOOD_INPUT]), {"Inference-Header-Content-Length": "100000"}, 400,
     ["Inference-Header-Content-Length", "100000"]),
    ("non-finite binary value", f"{MODEL}/infer",
     *binary_body({"inputs": [{"name": INPUT, "datatype": "FP32", "shape": [1, WIDTH],
                               "parameters": {"binary_data_size": len(ONE_ROW_FP32)}}]},
                  struct.pack("<f", float("nan")) + ONE_ROW_FP32[4:]),
     400, ["row 0", ("feature 0", MANIFEST["features"][0])]),
    ("FP64 value outside the float32 range", f"{MODEL}/infer",
     json_body([tensor(datatype="FP64", data=[1e300, *FIRST_ROW[1:]])]), {}, 400,
     ["row 0", ("feature 0", MANIFEST["features"][0])]),
    ("unknown model", "no-such-model/infer", json_body([GOOD_INPUT]), {}, 404, ["no-such-model"]),
    ("unknown version", f"{MODEL}/versions/9.9.9/infer", json_body([GOOD_INPUT]), {}, 404, ["9.9.9"]),
]


@pytest.mark.parametrize("path,body,headers,status,words", [case[1:] for case in BAD_REQUESTS],
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_request_is_refused_named_and_counted(api, client, held_out, path, body, headers, status, words):
    route = VERSIONED_INFER_ROUTE if "/versions/" in path else INFER_ROUTE
    before = api.errors(route)
    r = requests.post(f"{api.url}/v2/models/{path}", data=body, headers=headers, timeout=10)
    assert r.status_code == status, r.text
    message = r.json()["error"]
    assert isinstance(message, str), r.text
    missing = [w for w in words
               if not any(alt.lower() in message.lower() for alt in (w if isinstance(w, tuple) else (w,)))]
    assert not missing, f"the message {message!r} does not name {missing}"
    assert api.errors(route) == before + 1, f"inference_errors_total{{route={route}}} did not grow by one"
    # The worker that refused it still serves, and so does the client.
    result = client.infer(MODEL, [infer_input(np.array([held_out.rows[0]]), "FP32", True)])
    assert_same_as_predict(result, held_out, [0])


def test_body_over_the_limit_is_a_413_before_it_is_read(api):
    limit = yaml.safe_load(BASE_CONFIG.read_text())["limits"]["max_body_bytes"]
    before = api.errors(INFER_ROUTE)
    # Sent by hand: a client announcing a body over the limit, then its first bytes. The answer
    # comes without the rest (and `requests`, still sending, could see the connection closed).
    head = (f"POST /v2/models/{MODEL}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {limit + 1}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as s:
        s.sendall(head + json_body([GOOD_INPUT])[:64])
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < content_length(answer):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"413", answer
    message = json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]
    assert str(limit) in message, message
    assert api.errors(INFER_ROUTE) == before + 1


def content_length(answer: bytes) -> int:
    m = re.search(rb"(?im)^content-length:\s*(\d+)\r$", answer)
    return int(m.group(1)) if m else 0


def test_no_bad_request_panicked_a_worker(api):
    """Runs last in this file: the server log has no panic from anything sent above."""
    assert api.process.running()
    assert api.log_lines("panicked") == []
