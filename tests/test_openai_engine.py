"""The OpenAI-compatible engine against a real server (llama-cpp-python's, on 127.0.0.1) and a fault-injecting proxy.

The embedded 135M model serves: these tests check the plumbing (schemas, logprobs, retries, concurrency, workers),
never the quality of its judgements.
"""

import json
import logging

import pytest
from datasets import Dataset
from fake_openai import TOP, ScriptedServer, chat_reply, logprobs_reply

from goalcover_hf import Scorer
from goalcover_hf.engines import EngineMisconfigured, get_engine
from goalcover_hf.engines.openai import OpenAIEngine, RequestFailed
from goalcover_hf.judge import SCORE_CHOICES, JudgementJSON

CHAT = [{"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Rate from 1 to 5 how well 'take 200 mg' states a dose. One digit."}]
HELLO = [{"role": "user", "content": "Say hello."}]
ROWS = {"question": ["How much ibuprofen?", "What is asthma?", "Is it safe with food?", "How often?"],
        "answer": ["200 mg every 6 hours.", "A lung disease.", "Yes.", "Twice a day, may cause nausea."]}


@pytest.fixture(autouse=True)
def fresh_engines():
    yield
    get_engine.cache_clear()  # proxies come and go on reused ports: never hand a test another test's engine


def engine(url, **kw):
    kw.setdefault("retries", 2)
    kw.setdefault("backoff", 0.05)
    return OpenAIEngine(None, url, **kw)


def test_identity_comes_from_the_server(llama_server, spec):
    scorer = Scorer(spec, engine="openai", base_url=llama_server.base_url.removesuffix("/v1"))
    assert scorer.config.model == scorer.config.model_identity == llama_server.alias
    assert scorer.provenance()["engine"] == "openai" and scorer.provenance()["model"] == llama_server.alias
    assert scorer.is_embedded  # the card and the CLI warn: it is the 135M model behind the server
    with pytest.raises(ValueError, match="does not serve 'nope'.*SmolLM2-135M-Instruct-Q4_1"):
        Scorer(spec, "nope", engine="openai", base_url=llama_server.base_url)
    with pytest.raises(ValueError, match="needs base_url"):
        Scorer(spec, engine="openai")
    with pytest.raises(EngineMisconfigured, match="cannot list the models"):
        Scorer(spec, engine="openai", base_url="http://127.0.0.1:9/v1")


def test_structured_output_is_probed_and_applied(proxy):
    eng = engine(proxy.base_url)
    [raw] = eng.generate_json([CHAT], JudgementJSON, 64)
    parsed = JudgementJSON.model_validate_json(raw)
    assert parsed.score in (1, 2, 3, 4, 5)
    # llama-cpp-python's server refuses response_format json_schema and honours json_object with a schema.
    assert eng.structured == "json_object"
    tried = [next(iter(k for k in ("response_format", "structured_outputs", "guided_json") if k in b)) for b in proxy.bodies]
    assert tried[0] == "response_format" and proxy.bodies[0]["response_format"]["type"] == "json_schema"
    last = proxy.bodies[-1]
    assert last["response_format"] == {"type": "json_object", "schema": JudgementJSON.model_json_schema()
                                       | {"additionalProperties": False}}
    assert last["temperature"] == 0.0 and last["max_tokens"] == 64


def test_a_server_that_ignores_the_schema_fails_loudly(proxy, spec):
    proxy.strip = {"response_format", "structured_outputs", "guided_json"}
    with pytest.raises(EngineMisconfigured, match="honoured none of the structured-output parameters"):
        engine(proxy.base_url).generate_json([HELLO], JudgementJSON, 32)
    # Told which parameter to use, it checks every reply: free text that stopped normally is refused, not scored.
    with pytest.raises(EngineMisconfigured, match="ignored the JSON schema sent as 'json_object'.*free text"):
        engine(proxy.base_url, structured="json_object").generate_json([HELLO], JudgementJSON, 32)
    scorer = Scorer(spec, engine="openai", base_url=proxy.base_url, engine_options={"structured": "json_object"},
                    mode="generate")
    with pytest.raises(EngineMisconfigured):  # through the scorer too: the map stops, it does not fill errors
        scorer.judge_texts(["QUESTION: Say hello.\n\nANSWER: hello"])


def test_logprobs_scoring_matches_the_local_llamacpp_engine(proxy, spec):
    scorer = Scorer(spec, engine="openai", base_url=proxy.base_url)
    chats = [scorer.chat(text, sub, "ask_digit") for text in ("QUESTION: How much ibuprofen?\n\nANSWER: 200 mg.",
                                                               "QUESTION: What is asthma?\n\nANSWER: A lung disease.")
             for sub in spec.subgoals]
    remote = engine(proxy.base_url).choice_probs(chats, SCORE_CHOICES)
    assert proxy.bodies[0]["logprobs"] is True and proxy.bodies[0]["top_logprobs"] == 20
    assert proxy.bodies[0]["max_tokens"] == 1
    pytest.importorskip("numba")
    from goalcover_hf.engines.llamacpp import LlamaCppEngine

    local = LlamaCppEngine("embedded", threads=1, n_ctx=2048).choice_probs(chats, SCORE_CHOICES)
    for r, loc in zip(remote, local):
        assert len(r) == 5 and abs(sum(r) - 1) < 1e-6
        # Same weights and template: equal once the local distribution keeps only the digits the server's top 20
        # held (a digit outside them gets 0 remotely).
        kept = [x if y > 0 else 0.0 for x, y in zip(loc, r)]
        assert [x / sum(kept) for x in kept] == pytest.approx(r, abs=2e-3)


def test_a_server_without_logprobs_fails_loudly(proxy):
    proxy.strip = {"logprobs", "top_logprobs"}
    with pytest.raises(EngineMisconfigured, match="no top logprobs.*mode='generate'"):
        engine(proxy.base_url).choice_probs([CHAT], SCORE_CHOICES)


@pytest.fixture
def scripted():
    """A server with no model behind it, answering at once: timing is set by the test's events alone."""
    server = ScriptedServer()
    yield server
    server.close()


def test_requests_in_flight_overlap_up_to_the_bound(scripted):
    # The server holds each request until three are in at once: a client that did not overlap them would leave
    # the first one waiting (PATIENCE), and the count below would say so.
    scripted.hold_until(3)
    probs = engine(scripted.base_url, max_in_flight=3).choice_probs([CHAT] * 7, SCORE_CHOICES)
    assert all(p is not None for p in probs) and scripted.posts == 7
    assert scripted.max_in_flight == 3


@pytest.mark.parametrize("faults, posts", [(["500", "500"], 3), (["drop"], 2), (["503", "drop", "502"], 4)])
def test_transient_faults_are_retried(proxy, faults, posts):
    proxy.plan.extend(faults)
    [p] = engine(proxy.base_url, retries=3).choice_probs([CHAT], SCORE_CHOICES)
    assert p is not None and proxy.posts == posts


def test_a_timeout_is_retried(scripted):
    scripted.plan.append("hang")  # the first request is never answered: the client's timeout fires for certain
    [p] = engine(scripted.base_url, timeout=2, retries=3).choice_probs([CHAT], SCORE_CHOICES)
    assert p is not None and scripted.posts >= 2
    assert scripted.requests[-1]["body"]["messages"] == CHAT  # answered on a retry of the same request


def test_last_failure_becomes_a_per_pair_error_and_the_key_is_never_logged(proxy, spec, monkeypatch, caplog):
    monkeypatch.setenv("GOALCOVER_API_KEY", "sk-test-do-not-log")
    eng = engine(proxy.base_url)
    proxy.default = "500"
    with caplog.at_level(logging.DEBUG, logger="goalcover_hf"):
        assert eng.choice_probs([CHAT], SCORE_CHOICES) == [None]
    assert proxy.posts == 3  # the first try and 2 retries
    assert proxy.auth[-1] == "Bearer sk-test-do-not-log"
    assert "500" in caplog.text and "sk-test-do-not-log" not in caplog.text

    proxy.reset()
    proxy.default = "400"  # a refusal is not retried
    assert eng.choice_probs([CHAT], SCORE_CHOICES) == [None] and proxy.posts == 1

    proxy.reset()
    proxy.default = "500"
    options = {"retries": 1, "backoff": 0.01, "structured": "json_object"}
    for mode, message in (("logprobs", "scoring failed (see log)"), ("generate", "generation failed (see log)")):
        scorer = Scorer(spec, engine="openai", base_url=proxy.base_url, mode=mode, explain="none",
                        engine_options=options)
        judged = scorer.judge_texts(["QUESTION: q\n\nANSWER: a"])[0]
        assert [(j.score, j.error) for j in judged] == [(None, message)] * 2


def test_api_key_env_must_exist(proxy, monkeypatch):
    monkeypatch.delenv("MY_MISSING_KEY", raising=False)
    with pytest.raises(ValueError, match="MY_MISSING_KEY"):
        engine(proxy.base_url, api_key_env="MY_MISSING_KEY")


def test_request_failed_is_transient_only_after_retries(proxy):
    proxy.default = "500"
    with pytest.raises(RequestFailed) as err:
        engine(proxy.base_url).client.request("chat/completions", {"model": "x", "messages": HELLO})
    assert err.value.transient and "failed after 3 tries" in str(err.value)


def test_num_proc_workers_match_one_process(llama_server, spec):
    ds = Dataset.from_dict(ROWS)
    scorer = Scorer(spec, engine="openai", base_url=llama_server.base_url, mode="logprobs", explain="none",
                    batch_size=2)
    one = ds.map(scorer, batched=True, batch_size=2, features=scorer.features(ds.features))
    two = ds.map(scorer, batched=True, batch_size=2, num_proc=2, features=scorer.features(ds.features))
    assert one.to_list() == two.to_list()
    assert all(s in (1, 2, 3, 4, 5) for s in one["gc_states_dose_score"])


def test_generate_mode_through_the_server_fills_the_same_columns(llama_server, spec):
    ds = Dataset.from_dict({k: v[:1] for k, v in ROWS.items()})
    scorer = Scorer(spec, engine="openai", base_url=llama_server.base_url, max_new_tokens=96)
    out = ds.map(scorer, batched=True, features=scorer.features(ds.features))
    assert out.features == scorer.features(ds.features)
    for sub in spec.subgoals:
        score, error = out[f"gc_{sub.id}_score"][0], out[f"gc_{sub.id}_error"][0]
        assert (score in (1, 2, 3, 4, 5)) != (error is not None)


def test_cli_scores_through_a_server(llama_server, spec, tmp_path, capsys):
    from goalcover_hf.cli import main
    from goalcover_hf.results import load_run

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in zip(*ROWS.values())))
    spec_file = spec.save(tmp_path / "goal.yaml")
    out = tmp_path / "run"
    assert main(["score", "--data", str(data), "--spec", str(spec_file), "--engine", "openai", "--base-url",
                 llama_server.base_url, "--mode", "logprobs", "--explain", "none", "--max-in-flight", "2",
                 "--num-proc", "2", "-o", str(out)]) == 0
    assert "SmolLM2-135M" in capsys.readouterr().err  # the embedded-model warning, seen through the server
    run = load_run(out)
    assert run.provenance["engine"] == "openai" and run.provenance["model"] == llama_server.alias
    assert len(run.dataset) == 4
    readme = tmp_path / "README.md"
    assert main(["card", str(out), "--readme", str(readme)]) == 0
    assert f"`{llama_server.alias}` (openai)" in readme.read_text()
    assert main(["score", "--data", str(data), "--spec", str(spec_file), "--engine", "openai", "-o",
                 str(tmp_path / "x")]) == 2
    assert "needs base_url" in capsys.readouterr().err


# ---- thinking models, capped top_logprobs, hosted APIs (scripted servers) -------------------------------------------
def test_requests_ask_a_thinking_model_not_to_think_unless_told(scripted):
    engine(scripted.base_url).choice_probs([CHAT], SCORE_CHOICES)
    assert scripted.requests[-1]["body"]["chat_template_kwargs"] == {"enable_thinking": False}
    engine(scripted.base_url, thinking=True).choice_probs([CHAT], SCORE_CHOICES)
    assert "chat_template_kwargs" not in scripted.requests[-1]["body"]


def test_a_server_refusing_chat_template_kwargs_is_asked_without_them(scripted):
    def refuse(body, headers):
        if "chat_template_kwargs" in body:  # OpenAI's own words for a field it does not know
            return 400, {"error": {"message": "Unrecognized request argument supplied: chat_template_kwargs"}}
        return None

    scripted.respond = refuse
    eng = engine(scripted.base_url, max_in_flight=1)
    first, second = eng.choice_probs([CHAT, CHAT], SCORE_CHOICES)
    assert first == second == pytest.approx([0, 0, 1 / (1 + 2.718281828 ** -1.6), 1 / (1 + 2.718281828 ** 1.6), 0])
    sent = [r["body"] for r in scripted.requests if r["body"]]
    assert ["chat_template_kwargs" in b for b in sent] == [True, False, False]  # learnt once, for every request
    assert eng.describe()["chat_template_kwargs"] is None


THINK_TOP = [{"token": "<think>", "logprob": -0.05}, {"token": "3", "logprob": -4.0}, {"token": "Okay", "logprob": -5.0}]


@pytest.mark.parametrize("reply, sign", [
    (logprobs_reply(THINK_TOP), "its first token is '<think>'"),
    (logprobs_reply(TOP, reasoning_content="The user wants a digit..."), "reasoning_content"),
    (logprobs_reply([{"token": "Okay", "logprob": -0.3}, {"token": "<think>", "logprob": -1.5}]),
     "no choice among its top tokens, but '<think>' is"),
])
def test_a_reply_that_starts_by_reasoning_stops_logprobs_scoring(scripted, spec, reply, sign):
    scripted.respond = lambda body, headers: (200, reply)
    with pytest.raises(EngineMisconfigured, match="starts its reply by reasoning") as err:
        engine(scripted.base_url).choice_probs([CHAT], SCORE_CHOICES)
    assert sign in str(err.value) and "ignored chat_template_kwargs" in str(err.value)
    assert "mode='generate'" in str(err.value)
    with pytest.raises(EngineMisconfigured, match="drop thinking=True"):
        engine(scripted.base_url, thinking=True).choice_probs([CHAT], SCORE_CHOICES)
    scorer = Scorer(spec, engine="openai", base_url=scripted.base_url, mode="logprobs", explain="none", cache=False)
    with pytest.raises(EngineMisconfigured):  # the map stops: every pair would fail the same way
        scorer.judge_texts(["QUESTION: q\n\nANSWER: a"])


def test_a_reply_with_choices_on_top_is_scored_even_beside_a_think_token(scripted):
    top = [{"token": "4", "logprob": -0.1}, {"token": "<think>", "logprob": -3.0}]  # answers; thinking was an option
    scripted.respond = lambda body, headers: (200, logprobs_reply(top))
    assert engine(scripted.base_url).choice_probs([CHAT], SCORE_CHOICES) == [[0.0, 0.0, 0.0, 1.0, 0.0]]


def test_generate_mode_reads_the_answer_not_the_reasoning(scripted):
    answer = {"explanation": "States 200 mg.", "score": 4}

    def reason_then_answer(body, headers):
        schema = body["response_format"]["json_schema"]["schema"]
        value = {"probe": "gc-probe-7f3a"} if "probe" in schema["properties"] else answer
        decoy = '{"explanation": "not this", "score": 1}'  # JSON inside the reasoning must never be read
        return 200, chat_reply(f"<think>\nThe sample says 200 mg, {decoy} no...\n</think>\n\n{json.dumps(value)}",
                               reasoning_content=f"hidden reasoning {decoy}")

    scripted.respond = reason_then_answer
    eng = engine(scripted.base_url)
    [raw] = eng.generate_json([CHAT], JudgementJSON, 64)
    assert eng.structured == "json_schema"  # the probe's answer was found after the reasoning too
    assert json.loads(raw) == answer

    scripted.respond = lambda body, headers: (200, chat_reply(json.dumps(answer), reasoning_content='{"score": 1}'))
    assert json.loads(eng.generate_json([CHAT], JudgementJSON, 64)[0]) == answer


@pytest.mark.parametrize("field, message", [
    ("top_n_tokens", "Input validation error: `top_n_tokens` must be >= 0 and <= 5. Given: 20"),  # TGI
    ("top_logprobs", "top_logprobs must be at most 5"),
])
def test_top_logprobs_falls_back_when_the_server_caps_it(scripted, field, message):
    scripted.respond = lambda body, headers: (422, {"error": message}) if body["top_logprobs"] > 5 else None
    eng = engine(scripted.base_url, max_in_flight=1)
    assert eng.choice_probs([CHAT, CHAT], SCORE_CHOICES)[1][2] == pytest.approx(1 / (1 + 2.718281828 ** -1.6))
    assert [r["body"]["top_logprobs"] for r in scripted.requests if r["body"]] == [20, 5, 5]
    assert eng.describe()["top_logprobs"] == 5

    scripted.respond = lambda body, headers: (422, {"error": message})  # not even 5: no logprobs mode here
    with pytest.raises(EngineMisconfigured, match="refuses top_logprobs=5.*mode='generate'"):
        engine(scripted.base_url).choice_probs([CHAT], SCORE_CHOICES)


def test_raw_choice_probabilities_are_the_top_logprob_mass(scripted):
    import math

    def fail_second(body, headers):
        return (400, {"error": "bad request"}) if "second" in body["messages"][-1]["content"] else None

    scripted.respond = fail_second
    eng = engine(scripted.base_url)
    other = [{"role": "user", "content": "second"}]
    raw, failed = eng.choice_probs([CHAT, other], SCORE_CHOICES, renormalize=False)
    assert raw == pytest.approx([0, 0, math.exp(-0.2), math.exp(-1.8), 0]) and failed is None
    [[shared]] = eng.choice_probs_shared([[CHAT]], SCORE_CHOICES, renormalize=False)
    assert shared == pytest.approx(raw)
    [norm] = eng.choice_probs([CHAT], SCORE_CHOICES)
    assert norm == pytest.approx([x / sum(raw) for x in raw])


def test_a_hosted_api_works_with_a_key_and_refused_fields(spec, monkeypatch):
    """As OpenAI answers: a key on every request, many models, unknown fields and strict-schema string lengths
    refused with a 400, the JSON schema honoured."""
    monkeypatch.setenv("MY_PROVIDER_KEY", "sk-hosted")
    server = ScriptedServer(models=["gpt-4o-mini", "gpt-4o", "o3-mini"], key="sk-hosted")

    def hosted(body, headers):
        if "chat_template_kwargs" in body:
            return 400, {"error": {"message": "Unrecognized request argument supplied: chat_template_kwargs"}}
        if body.get("logprobs"):
            return None
        schema = body["response_format"]["json_schema"]["schema"]
        if "maxLength" in json.dumps(schema):
            return 400, {"error": {"message": "Invalid schema for response_format 'JudgementJSON': In context=('"
                                              "properties', 'explanation'), 'maxLength' is not permitted."}}
        if "probe" in schema["properties"]:
            return 200, chat_reply('{"probe": "gc-probe-c21e"}')
        return 200, chat_reply(json.dumps({"explanation": "Gives a dose.", "score": 5}))

    server.respond = hosted
    try:
        with pytest.raises(ValueError, match="serves 3 models.*choose one with --model"):
            Scorer(spec, engine="openai", base_url=server.base_url, engine_options={"api_key_env": "MY_PROVIDER_KEY"})
        for mode, score in (("logprobs", 3), ("generate", 5)):
            scorer = Scorer(spec, "gpt-4o-mini", engine="openai", base_url=server.base_url, mode=mode,
                            explain="none", cache=False,
                            engine_options={"api_key_env": "MY_PROVIDER_KEY", "retries": 0})
            judged = scorer.judge_texts(["QUESTION: How much?\n\nANSWER: 200 mg."])[0]
            assert [(j.score, j.error) for j in judged] == [(score, None)] * 2
            assert scorer.provenance()["model"] == "gpt-4o-mini"
        assert {r["headers"].get("Authorization") for r in server.requests} == {"Bearer sk-hosted"}
        assert {r["body"]["model"] for r in server.requests if r["body"]} == {"gpt-4o-mini"}
    finally:
        server.close()
        get_engine.cache_clear()
