"""Hub tokens and API keys never reach a file goalcover writes, its output or its logs."""

import json

from fake_openai import ScriptedServer

from goalcover_hf.cli import main

PLANTED = {
    "HF_TOKEN": "hf_PlantedHubToken7f3a9c1e5b2d8046",
    "HUGGING_FACE_HUB_TOKEN": "hf_PlantedLegacyToken0b6e4d2c9a71",
    "OPENAI_API_KEY": "sk-planted-openai-key-3c8e1f90d4b2",
}


def test_planted_secrets_appear_in_no_written_file_and_no_output(tmp_path, tiny_model, spec, monkeypatch, capfd):
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GOALCOVER_CACHE", str(tmp_path / "goalcover_cache"))  # every cache under tmp_path
    data = tmp_path / "rows.jsonl"
    rows = [{"id": f"r{k}", "question": f"How much drug {k}?", "answer": f"Take {k + 1}00 mg."} for k in range(6)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec_file = str(spec.save(tmp_path / "goal.yaml"))
    run, readme = tmp_path / "run", tmp_path / "card" / "README.md"

    # The local judge with the pair cache on, explanations generated; then report, gaps (named by the judge), card.
    assert main(["score", "--data", str(data), "--spec", spec_file, "--model", tiny_model, "--mode", "logprobs",
                 "--explain", "all", "--max-context-tokens", "2048", "--cache", str(tmp_path / "pairs.sqlite"),
                 "-o", str(run), "--jsonl", str(tmp_path / "rows.scored.jsonl")]) == 0
    assert main(["report", str(run)]) == 0
    assert main(["gaps", str(run), "--min-coverage", "1.0"]) == 0
    assert main(["card", str(run), "--readme", str(readme), "--min-coverage", "1.0"]) == 0

    # A server judge, which sends OPENAI_API_KEY with every request.
    server = ScriptedServer(max_model_len=4096)
    try:
        assert main(["score", "--data", str(data), "--spec", spec_file, "--engine", "openai", "--base-url",
                     server.base_url, "--mode", "logprobs", "--explain", "none", "--cache",
                     str(tmp_path / "server_pairs.sqlite"), "-o", str(tmp_path / "server_run")]) == 0
    finally:
        server.close()
    sent = {r["headers"].get("Authorization") for r in server.requests}
    assert sent == {f"Bearer {PLANTED['OPENAI_API_KEY']}"}  # the key was in use, so the check below means something

    out, err = capfd.readouterr()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    # The walk covers the run folders, both pair caches (WAL included while open), the card, gaps, charts, JSONL.
    assert {"run.json", "pairs.sqlite", "server_pairs.sqlite", "README.md", "gaps.json", "goalcover_coverage.png",
            "rows.scored.jsonl"} <= names, sorted(names)
    for name, value in PLANTED.items():
        assert value not in out and value not in err, f"{name} printed"
        for path in written:
            assert value.encode() not in path.read_bytes(), f"{name} written to {path}"
