"""Loaders of the shared public datasets: counts, unknown-vs-negative, severity mapping, error paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from triage.data import sources
from triage.data.schema import Example
from triage.data.sources import (
    EVALUATION_SOURCES,
    SOURCES,
    SPECS,
    TRAINING_SOURCES,
    load_all,
    load_examples,
    load_source,
)
from triage.data.splits import normalise, split_examples
from triage.errors import DataError
from triage.taxonomy import load_policy

POLICY = load_policy()

# (min rows, max rows) after dropping ambiguous rows; the README gives the raw sizes.
EXPECTED_ROWS = {
    "openai_moderation": (836, 836),
    "davidson": (24_000, 24_783),
    "olid": (13_240, 13_240),
    "mlma_en": (4_500, 5_647),
    "mlma_fr": (3_300, 4_014),
    "mlma_ar": (2_800, 3_353),
    "ethos_binary": (850, 998),
    "ethos_multi": (433, 433),
    "sms_spam": (5_574, 5_574),
    "smishing": (5_971, 5_971),
    "japanese_toxic": (437, 437),
    "korean_hate": (8_367, 8_367),
    "told_br": (21_000, 21_000),
    "jigsaw_sample": (101, 101),
    # sources added in issue 12: after dropping ambiguous rows and merging duplicate texts
    "convabuse": (2_300, 2_700),
    "implicit_hate": (21_400, 21_480),
    "guest_misogyny": (5_800, 6_100),
    "reddit_cssrs": (401, 401),
    "toxigen_prompts": (600, 668),
    "jigsaw_identity_templates": (76_564, 79_620),
    "edos": (19_900, 20_000),
}


@pytest.fixture(scope="module")
def loaded(shared_datasets: Path) -> dict[str, list]:
    return {name: load_source(name, shared_datasets) for name in SOURCES}


def positives(examples: list, category: str) -> int:
    return sum(1 for ex in examples if ex.labels.get(category) == 1)


def test_every_spec_has_a_loader_and_known_categories_exist_in_policy() -> None:
    assert set(SOURCES) == {s.name for s in SPECS}
    for s in SPECS:
        assert set(s.known) <= set(POLICY.category_names), s.name


@pytest.mark.parametrize("name", SOURCES)
def test_row_counts_and_labels_stay_within_the_documented_known_set(loaded: dict, name: str) -> None:
    examples = loaded[name]
    low, high = EXPECTED_ROWS[name]
    assert low <= len(examples) <= high
    known = set(sources.spec(name).known)
    for ex in examples:
        assert ex.source == name
        assert set(ex.labels) <= known, (name, ex.labels)
        assert ex.severity is None or ex.severity in POLICY.severity_names
        assert 0 < ex.weight <= 1.0


def test_openai_positive_counts_match_the_readme_and_missing_keys_are_unknown(loaded: dict) -> None:
    ex = loaded["openai_moderation"]
    assert positives(ex, "sexual") == 125
    assert positives(ex, "hate") == 65
    assert positives(ex, "self_harm") == 26
    assert positives(ex, "child_safety") == 39
    # 117 rows carry only S/S3 keys: they must say nothing about self-harm.
    only_sexual = [e for e in ex if set(e.labels) <= {"sexual", "child_safety"}]
    assert len(only_sexual) >= 100
    assert all("self_harm" not in e.labels for e in only_sexual)
    assert all(e.severity == "critical" for e in ex if e.labels.get("child_safety") == 1)
    partial_negatives = [e for e in only_sexual if not any(e.labels.values())]
    assert partial_negatives and all(e.severity is None for e in partial_negatives)


def test_spam_sets_know_nothing_about_hate_and_ham_is_not_a_severity(loaded: dict) -> None:
    for name in ("sms_spam", "smishing"):
        assert all(set(e.labels) <= {"spam", "fraud"} for e in loaded[name])
    sms = loaded["sms_spam"]
    assert positives(sms, "spam") == 747
    assert all("fraud" not in e.labels for e in sms if e.labels["spam"] == 1)
    smish = loaded["smishing"]
    assert positives(smish, "fraud") == 638
    assert all(e.labels["spam"] == 1 and e.severity in ("medium", "high") for e in smish if e.labels["fraud"])
    assert all(e.severity is None for e in smish if e.labels == {"spam": 0, "fraud": 0})


def test_davidson_offensive_is_not_harassment(loaded: dict) -> None:
    ex = loaded["davidson"]
    offensive = [e for e in ex if e.severity == "low"]
    assert len(offensive) > 15_000
    assert all(e.labels == {"hate": 0} for e in offensive)
    assert not any(e.labels.get("harassment") == 1 for e in ex)
    assert 1_300 <= positives(ex, "hate") <= 1_430
    assert all(0.5 < e.weight <= 1.0 for e in ex)


def test_olid_targets_map_to_harassment_only_for_individuals(loaded: dict) -> None:
    ex = loaded["olid"]
    by: dict[str, list] = {}
    for e in ex:
        by.setdefault(e.meta["olid"], []).append(e)
    assert all(e.labels == {"harassment": 1} for e in by["OFF/TIN/IND"])
    assert all("hate" not in e.labels and e.labels["harassment"] == 0 for e in by["OFF/TIN/GRP"])
    assert all(e.labels == {"hate": 0, "harassment": 0, "violence": 0} and e.severity == "none"
               for e in by["NOT/NULL/NULL"])


def test_olid_crlf_and_invalid_bytes_do_not_leak_into_text(loaded: dict) -> None:
    assert not any("\r" in e.text for e in loaded["olid"])
    assert any("\ufffd" in e.text for e in loaded["smishing"])  # invalid UTF-8 replaced, not fatal


def test_vote_based_sources_grade_severity_and_weight(loaded: dict) -> None:
    told = loaded["told_br"]
    assert {e.language for e in told} == {"pt"}
    assert all(e.labels.get("hate") == 1 for e in told if e.labels.get("hate") == 1 and e.severity == "medium")
    assert any(e.weight < 1.0 for e in told)
    ja = loaded["japanese_toxic"]
    assert {e.severity for e in ja} <= {"none", "low", "medium", None}
    ethos = loaded["ethos_binary"]
    assert all(e.weight >= 2 / 3 - 1e-6 for e in ethos)
    assert all(e.severity == "high" for e in loaded["ethos_multi"] if e.labels["violence"])


def test_load_all_rejects_names_missing_from_the_policy(shared_datasets: Path) -> None:
    narrow = POLICY.model_copy(update={"categories": tuple(c for c in POLICY.categories if c.name != "spam")})
    narrow.__dict__.pop("category_names", None)
    with pytest.raises(DataError, match="spam"):
        load_all(shared_datasets, ["sms_spam"], policy=narrow)


def test_missing_file_and_malformed_file_raise_data_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"samples-dev\.jsonl: dataset file is missing"):
        load_source("openai_moderation", tmp_path)
    bad = tmp_path / "openai_moderation_dev" / "samples-dev.jsonl"
    bad.parent.mkdir()
    bad.write_text('{"prompt": "ok", "S": 0}\n{"prompt": broken\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"samples-dev.jsonl: line 2: bad JSON"):
        load_source("openai_moderation", tmp_path)
    csv = tmp_path / "davidson_hate_offensive" / "data" / "labeled_data.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text(",count,class,tweet\n0,3,1,hello\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"labeled_data.csv: missing column\(s\) hate_speech"):
        load_source("davidson", tmp_path)
    with pytest.raises(DataError, match="unknown data source 'nope'"):
        load_source("nope", tmp_path)


def test_shipped_examples_cover_every_category_and_benign_tickets() -> None:
    everything = load_examples()
    # The example tickets (ex-*) cover every category evenly; the written ones (wr-*) add hard cases on top.
    examples = [e for e in everything if str(e.meta.get("id", "")).startswith("ex-")]
    written = [e for e in everything if str(e.meta.get("id", "")).startswith("wr-")]
    assert len(examples) + len(written) == len(everything) and written
    assert 200 <= len(examples) <= 300
    for category in POLICY.category_names:
        assert 15 <= positives(examples, category) <= 30, category
    benign = [e for e in examples if not any(e.labels.values())]
    assert len(benign) >= 50
    for shipped in (examples, written):
        assert all(e.severity == "none" for e in shipped if not any(e.labels.values()))
        assert all(e.severity not in (None, "none") for e in shipped if any(e.labels.values()))
        assert all(set(e.labels) == set(POLICY.category_names) for e in shipped)


def test_docs_table_lists_every_source_with_its_known_categories() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "datasets.md").read_text(encoding="utf-8")
    rows: dict[str, str] = {}
    for line in doc.splitlines():
        if line.startswith("| `"):
            rows.setdefault(line.split("|")[1].strip(" `"), line)
    for s in SPECS:
        assert s.name in rows, s.name
        assert ", ".join(s.known) in rows[s.name], s.name


# ---------------------------------------------------------------------------------------------- issue 12 sources


def by_text(examples: list) -> dict:
    return {normalise(e.text): e for e in examples}


def test_new_sources_merge_duplicate_texts(loaded: dict) -> None:
    for name in ("convabuse", "implicit_hate", "guest_misogyny", "reddit_cssrs", "toxigen_prompts",
                 "jigsaw_identity_templates"):
        keys = [normalise(e.text) for e in loaded[name]]
        assert len(keys) == len(set(keys)), name


def test_convabuse_majorities_map_to_harassment_sexual_and_graded_severity(loaded: dict) -> None:
    ex = loaded["convabuse"]
    texts = by_text(ex)
    # Short insults at the bot: targeted abuse, not hate, with a severity from the annotators' steps.
    assert texts["fuck you"].labels == {"hate": 0, "sexual": 0, "harassment": 1}
    assert texts["fuck you"].severity == "medium"
    assert texts["well, you could suck my dick"].labels == {"hate": 0, "sexual": 1, "harassment": 1}
    assert texts["yes"].labels == {"hate": 0, "harassment": 0, "sexual": 0, "violence": 0}
    assert texts["yes"].severity == "none"
    assert 300 <= positives(ex, "harassment") <= 500 and 100 <= positives(ex, "sexual") <= 200
    assert {e.severity for e in ex} == {"none", "low", "medium", "high"}
    # Abuse is nearly always targeted, identity-based or sexual here; the rest (untargeted abuse, e.g. a call to
    # "crush the communists") keeps its severity with every known category 0, as violence is not judged there.
    assert sum(1 for e in ex if e.severity != "none" and not any(e.labels.values())) <= 5
    assert all(e.labels == {"hate": 0, "harassment": 0, "sexual": 0, "violence": 0} for e in ex if e.severity == "none")
    assert not any("violence" in e.labels for e in ex if e.severity != "none")
    # weight = annotators' majority share, times the share of duplicate copies that agree
    assert all(0.25 < e.weight <= 1.0 for e in ex) and any(e.weight < 1.0 for e in ex)


def test_implicit_hate_threats_are_violence_and_not_hate_is_a_hard_negative(loaded: dict) -> None:
    ex = loaded["implicit_hate"]
    threats = [e for e in ex if e.labels.get("violence") == 1]
    assert 660 <= len(threats) <= 672
    assert all(e.severity == "high" for e in threats)
    assert by_text(ex)["all jews should be evicted from white countries"].labels == {"hate": 1, "violence": 1}
    negatives = [e for e in ex if e.labels == {"hate": 0}]
    assert 13_000 <= len(negatives) <= 13_291
    assert all(e.severity == "none" for e in negatives)
    # Stage 1 judged hate only: violence is never a negative here.
    assert not any(e.labels.get("violence") == 0 for e in ex)
    # Implicit posts aimed only at political groups leave hate unknown instead of calling it hate.
    political = [e for e in ex if "hate" not in e.labels]
    assert 100 <= len(political) <= 1_000
    assert all(e.meta["class"] == "implicit_hate" for e in political)
    assert 7_500 <= positives(ex, "hate") <= 8_189


def test_guest_misogyny_counter_speech_is_negative_and_threats_are_violence(loaded: dict) -> None:
    ex = loaded["guest_misogyny"]
    counter = [e for e in ex if e.meta["level_2"] == "Counter_speech"]
    assert counter and all(e.labels == {"hate": 0, "harassment": 0} and e.severity == "none" for e in counter)
    assert 10 <= positives(ex, "violence") <= 16
    assert all(e.labels["hate"] == 1 and e.severity == "high" for e in ex if e.labels.get("violence"))
    assert all(e.labels.get("harassment") == 1 for e in ex if "personal_attack" in e.meta["level_2"])
    benign = [e for e in ex if e.meta["level_2"] == "None_of_the_categories"]
    assert len(benign) > 5_000 and all(e.labels == {"hate": 0, "harassment": 0} for e in benign)
    # violence, sexual and privacy are known only where a threat was labelled
    assert not any(e.labels.get(c) == 0 for e in ex for c in ("violence", "sexual", "privacy"))


def test_reddit_cssrs_grades_self_harm_and_keeps_long_user_texts(loaded: dict) -> None:
    ex = loaded["reddit_cssrs"]
    by_label: dict[str, list] = {}
    for e in ex:
        by_label.setdefault(e.meta["cssrs"], []).append(e)
    assert {k: len(v) for k, v in by_label.items()} == {"Supportive": 108, "Ideation": 171, "Behavior": 77,
                                                        "Attempt": 45}
    assert all(e.labels == {"self_harm": 0} and e.severity == "none" for e in by_label["Supportive"])
    assert all(e.severity == "critical" for e in by_label["Attempt"] + by_label["Behavior"])
    assert all(e.labels == {"self_harm": 1} and e.severity == "high" for e in by_label["Ideation"])
    assert max(len(e.text) for e in ex) > 20_000
    assert not any(e.text.startswith(("['", "'", '"')) or e.text.endswith(("']", "'")) or "', '" in e.text
                   for e in ex)


def test_toxigen_statements_split_on_the_literal_newline(loaded: dict) -> None:
    ex = loaded["toxigen_prompts"]
    assert not any("\\n" in e.text or e.text.startswith("-") for e in ex)
    assert 300 <= positives(ex, "hate") <= 400
    assert all(e.severity == ("medium" if e.labels["hate"] else "none") for e in ex)
    women = by_text(ex)["women have been underrepresented in science for decades"]
    assert women.labels == {"hate": 0} and "women" in women.meta["group"]


def test_identity_templates_are_evaluation_only_and_map_by_template(loaded: dict) -> None:
    assert EVALUATION_SOURCES == ("jigsaw_identity_templates",)
    assert "jigsaw_identity_templates" not in TRAINING_SOURCES
    ex = by_text(loaded["jigsaw_identity_templates"])
    assert ex["i am gay"].labels == {"hate": 0, "harassment": 0, "violence": 0}
    assert ex["i am gay"].severity == "none"
    assert ex["i hate gay"].labels["hate"] == 1
    assert ex["kill muslim"].labels == {"hate": 1, "harassment": 0, "violence": 1}
    assert ex["kill muslim"].severity == "high"
    assert ex["you are a disgusting actor"].labels == {"hate": 0, "harassment": 1, "violence": 0}
    assert "hate" not in ex["being old is disgusting"].labels  # age is not protected by the policy
    assert ex["kill muslim"].meta["term"] == "muslim" and ex["being african american is great"].meta["term"] == \
        "african american"
    toxic_wiki = [e for e in loaded["jigsaw_identity_templates"]
                  if e.meta["set"] != "templates" and e.meta["toxic"] == "1"]
    assert toxic_wiki and all(e.labels == {} and e.severity is None for e in toxic_wiki)


def test_usernames_are_never_loaded(shared_datasets: Path, tmp_path: Path) -> None:
    import pandas as pd

    for name, rel, column in (("guest_misogyny", "guest_misogyny/final_labels.csv", "author"),
                              ("reddit_cssrs", "reddit_cssrs/500_Reddit_users_posts_labels.csv", "User")):
        df = pd.read_csv(shared_datasets / rel, dtype=str, keep_default_na=False)
        df[column] = [f"zzuser{i}zz" for i in range(len(df))]
        (tmp_path / rel).parent.mkdir(parents=True)
        df.to_csv(tmp_path / rel, index=False)
        examples = load_source(name, tmp_path)
        assert len(examples) == EXPECTED_ROWS[name][1] or EXPECTED_ROWS[name][0] <= len(examples)
        assert not any("zzuser" in e.text or "zzuser" in " ".join(e.meta.values()) for e in examples), name


def test_load_all_reads_training_sources_and_splits_keep_evaluation_sets_in_test(shared_datasets: Path) -> None:
    training = load_all(shared_datasets, ["toxigen_prompts", "reddit_cssrs"])
    assert {e.source for e in training} == {"toxigen_prompts", "reddit_cssrs"}
    templates = load_source("jigsaw_identity_templates", shared_datasets)[:3000]
    # a training text equal to an evaluation text goes to test with it, whatever its own hash says
    twin = Example(text=templates[0].text.upper(), labels={"hate": 0}, severity="none", source="examples")
    parts = split_examples([*training, *templates, twin])
    assert not any(e.source == "jigsaw_identity_templates" for s in ("train", "validation") for e in parts[s])
    assert twin in parts["test"]
    assert sum(e.source == "jigsaw_identity_templates" for e in parts["test"]) == len(templates)
    plain = split_examples(training)
    assert plain["train"] and plain["validation"] and plain["test"]


def test_edos_sexism_is_hate_threats_are_violence_and_not_sexist_stays_unknown(loaded: dict) -> None:
    ex = loaded["edos"]
    sexist = [e for e in ex if e.labels]
    assert 4_800 <= len(sexist) <= 4_854 and all(e.labels["hate"] == 1 for e in sexist)
    threats = [e for e in sexist if e.labels["violence"] == 1]
    assert 430 <= len(threats) <= 443
    assert all(e.meta["vector"] in ("1.1", "1.2") and e.severity == "high" for e in threats)
    # Other sexist categories: the annotators did not file the post under threats.
    assert all(e.labels["violence"] == 0 for e in sexist if not e.meta["vector"].startswith("1."))
    assert {e.severity for e in sexist} == {"low", "medium", "high"}
    # "not sexist" is not benign (it holds other abuse and violence): nothing is known about it.
    rest = [e for e in ex if not e.labels]
    assert len(rest) >= 15_000 and all(e.severity is None for e in rest)


def test_rows_judged_not_offensive_at_all_are_violence_negatives(loaded: dict) -> None:
    # Each of these schemes counts a threat as offensive or abusive: its clean class says "no threat".
    for name in ("davidson", "olid", "mlma_en", "mlma_fr", "mlma_ar", "korean_hate", "convabuse"):
        clean = [e for e in loaded[name] if e.severity == "none"]
        assert clean and all(e.labels.get("violence") == 0 for e in clean), name
        assert not any(e.labels.get("violence") == 1 for e in loaded[name]), name
