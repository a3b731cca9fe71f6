"""Score requests store their review tickets before they are answered (the model thread writes each batch in one
outbox transaction): an answer means stored."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from tests.unit.hardening.conftest import review_text


def test_every_answered_review_ticket_is_already_in_the_outbox(client: TestClient) -> None:
    outbox = client.app.state.review.outbox  # type: ignore[attr-defined]

    def post(i: int) -> tuple[str, dict[str, int]]:
        tid = f"G-{i}"
        r = client.post("/v1/score", json={"tickets": [{"id": tid, "text": f"{review_text()} {i}"}]})
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["route"] == "review"
        return tid, outbox.states([tid])  # read right after the answer, before anything else happens

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(40)))
    # stored once (waiting, or already delivered to the Label Studio double)
    assert all(sum(states.values()) == 1 for _, states in answers), answers
    counts = outbox.counts()
    assert counts["waiting"] + counts["sent"] == 40
    spool = client.app.state.review_spool  # type: ignore[attr-defined]
    assert 1 <= spool.transactions <= 40
