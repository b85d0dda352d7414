"""Print the README's bad-input table: every case of tests/bad_inputs.py run through the real `goalcover` CLI, with
the message the user actually gets (nothing here is typed by hand).

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bad_input_table.py > table.md

It builds the tests' tiny random model in a temporary folder (seconds), keeps every cache there, and takes about a
minute on 2 CPU cores. Paths in the messages are shown relative to each case's folder.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = {"error": "exit 2", "failed": "exit 1", "row": "row error", "warning": "warning, run completes"}


def main() -> int:
    """Print the table; exit 1 if a case did not give the message it promises."""
    with tempfile.TemporaryDirectory(prefix="goalcover_bad_inputs_") as tmp:
        tmp = Path(tmp)
        # Before datasets is imported: it reads its cache location once.
        os.environ.update(HF_HUB_OFFLINE="1", GOALCOVER_CACHE=str(tmp / "goalcover_cache"),
                          HF_DATASETS_CACHE=str(tmp / "hf_datasets"), TOKENIZERS_PARALLELISM="false",
                          GOALCOVER_VERBOSITY="ERROR")
        sys.path.insert(0, str(ROOT / "tests"))
        from bad_inputs import CASES, FIRST_ERROR, Env, message
        from tiny_model import build_tiny_model

        with quiet_stdout():  # the tokenizer trainer prints to the process's stdout
            model = str(build_tiny_model(tmp / "tiny_model"))
        print("| input | message the user gets |")
        print("|---|---|")
        for k, case in enumerate(CASES):
            folder = tmp / f"case{k:02d}"
            folder.mkdir()
            env = Env(folder, model)
            code, text, err = message(case, env)
            if not text or case.expect not in text:
                print(f"case {case.input!r} did not give its message (exit {code}):\n{err}", file=sys.stderr)
                return 1
            text = text.replace(f"{folder}/", "").replace(model, "tiny_model")
            if case.kind == "row":
                text = f"`{FIRST_ERROR}`: {text}"
            if case.kind == "warning":
                from goalcover_hf.results import load_run

                cut = load_run(env.out).dataset["gc_truncated_tokens"][0]
                text += f"; the row's `gc_truncated_tokens`: {cut}" if cut else ""
            print(f"| {case.input} ({KINDS[case.kind]}) | {text.replace('|', chr(92) + '|')} |")
    return 0


@contextlib.contextmanager
def quiet_stdout():
    """Send what is written to the process's stdout (file descriptor 1) to /dev/null meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


if __name__ == "__main__":
    sys.exit(main())
