"""Model-file refusals are whole sentences a user can act on (issue 14).

They were cut at 200 characters of torch's text, right before its code-execution caveat, so
they read as advice to load with ``weights_only=False``; a truncated file's message ended
mid-sentence.
"""

import os
import pickle

import pytest
import torch

from insar_gnss_3d.core.modelfile import ModelFileError, read_model_file

BUNDLED = os.path.join(os.path.dirname(__file__), "..", "..", "resources", "models", "insar_gnss_3d.pt")


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def _message(path):
    with pytest.raises(ModelFileError) as info:
        read_model_file(str(path))
    text = str(info.value)
    assert text.endswith(".") and "\n" not in text
    return text


def test_code_carrying_file_message_is_complete_and_gives_no_unsafe_advice(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": _Evil()}, path)
    text = _message(path)
    assert "weights_only" not in text and "will likely succeed" not in text
    assert "refused without running" in text and "posix.getcwd" in text
    legacy = tmp_path / "legacy.pt"
    with open(legacy, "wb") as f:
        pickle.dump(_Evil(), f)
    assert "refused without running" in _message(legacy)


@pytest.mark.parametrize("content", ["half", "empty", "text"])
def test_truncated_or_foreign_bytes_get_a_whole_sentence(tmp_path, content):
    data = open(BUNDLED, "rb").read()
    path = tmp_path / "model.pt"
    path.write_bytes({"half": data[: len(data) // 2], "empty": b"", "text": b"hello world\n"}[content])
    text = _message(path)
    assert "cut short, damaged or a file of another kind" in text and text.endswith("trainmodel.")
    assert "internal miniz error" not in text
