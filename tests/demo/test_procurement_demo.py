"""`ggzy demo --sector procurement`: a government procurement by open tendering through the HTTP API, every
step checked, with the G rules it breaks refused and the saving to the fen."""

from __future__ import annotations

import io
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from demo.private import ServerParts, run_demo
from demo.procurement import PROCUREMENT, PROCUREMENT_STEPS

# isort: split
from app import build_runtime, create_app

SERVER = ServerParts(build_runtime, create_app)


async def test_the_procurement_demo_runs_to_the_end_with_every_step_checked(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None, highlight=False)

    assert await run_demo(console, SERVER, keep=tmp_path / "kept", sector="procurement") is True

    shown = out.getvalue()
    assert "✗" not in shown
    assert shown.count("✓") == len(PROCUREMENT_STEPS)
    # the budget, the award and the saving, to the fen
    saving = PROCUREMENT.estimated_price_fen - min(PROCUREMENT.prices_fen)
    assert saving == 112_345_679
    for fact in (
        "a government procurement by open tendering through the HTTP API",
        "deposit 240,000.01 yuan (2 % + 1 fen) → 422 rule G-03 on lots[0].deposit_fen",
        "(G-02: ≥ 20 days); budget 12,000,000.00 yuan, deposit 240,000.00 yuan (G-03 cap)",
        "deadline 2026-03-22 10:00 → 422 rule G-02, earliest legal day 2026-03-23",
        "1 to suspense (mistyped sub-account) matched by the centre",
        "4 deposits in place at the deadline",
        "4 envelopes opened by their suppliers' keys and read out",
        "a committee of 5 → 422 rule G-07",
        "at least 7 are required",
        "7 drawn from a pool of 9 (B02 × 5, D01 × 2)",
        "report",
        "signed by all seven",
        "status decision, no candidates notice",
        "(G-11): budget 12,000,000.00 yuan, award 10,876,543.21 yuan, saving 1,123,456.79 yuan",
        "bidder4 challenged the result 2026-03-25 10:00, to be answered by the end of 2026-04-03",
        "the contract → 422 rule G-12",
        "security 1,087,654.33 → 422 on performance_security_fen, 1,087,654.32 (10 %) recorded; status contracted",
        "3 G-04-loser refunds due 2026-03-31 (award notice 2026-03-24 + 5 working days)",
        "bidder2's G-04-winner due 2026-04-01 (contract 2026-03-25 + 5 working days)",
        "paid all 4",
        "GGZY-320100-2026-G000002 unsuccessful: G-13",
        "2 deposits due back by 2026-04-22 (G-04-end)",
        "→ GGZY-320100-2026-G000003 by request for quotation, consent 南京市财政局",
        "an approval dated in the future → 422 on approval.approved_on",
        "quotes due 2026-04-20 10:00 (G-13: ≥ 3 working days)",
        "a panel of 3 drawn (B02 × 2, D01 × 1)",
        "the panel ranks bidder2 first at 2,845,600.10 yuan",
        "budget 3,000,000.00 yuan, award 2,845,600.10 yuan, saving 154,399.90 yuan",
        "status negotiation; a round with each supplier alone, bidder2 sees only its own minutes",
        "3 final quotes sealed by",
        "published together at 2026-05-27 11:38: 1,589,900.07, 1,658,000.00, 1,690,000.00 yuan",
        "budget 1,800,000.00 yuan, award 1,589,900.07 yuan, saving 210,099.93 yuan",
        "accepted 2026-06-29; status completed",
        # the trades below run after the others: their dates move when a trade is added before them
        "(G-13: ≥ 10 days)",
        "published together at 2026-",
        "869,999.90, 886,000.00, 902,500.00 yuan",
        "bidder4 first; GGZY-320100-2026-G000005: budget 960,000.00 yuan, award 869,999.90 yuan, saving 90,000.10 yuan",
        "«不动产登记信息系统原厂升级服务单一来源采购» names bidder3 alone",
        "documents from today → 422 rule G-14 on documents_from, earliest 2026-",
        "(G-14).); answered, status tendering; a later objection → 422 rule G-14",
        "bidder4 obtaining the documents → 403; bidder3's one response opened at 958,800.00 yuan",
        "at 958,800.00 yuan (budget 960,000.00 yuan, saving 1,200.00 yuan); contract 2026-",
        "ranks bidder4 first; awarded at 619,800.00 yuan",
        "bidder1 challenged the result; upheld with a re-evaluation: the award annulled, status evaluation",
        "round 2 room open for the same panel",
        "bidder4 failed on qualification («营业执照已过有效期，响应截止时不具备独立承担民事责任的资格»), bidder1 first",
        "awarded at 643,000.00 yuan; round 1 report",
        "still on record, unchanged; contract 2026-",
        "10:00 (G-02: ≥ 20 days); 4 sealed bids",
        "a single award → 409 rule G-01",
        "at caps 4,523,000.00, 4,680,000.00, 4,715,500.00 yuan, published",
        "direct order at 4,523,000.01 yuan (cap + 1 fen) → 422 rule G-01 on price_fen, at the cap placed",
        "mini-competition of 3 quotes, none seen before 2026-",
        "at 4,418,000.50 yuan; 2 orders published",
        "«南京大学分析测试中心实验室仪器设备采购», budget 6,800,000.00 yuan, two envelopes; invited "
        "bidder1, bidder2, bidder3, bidder4; bids close 2026-",
        "4 bids of two envelopes, each one request and one receipt naming both",
        "opened locally its technical envelope declares no price, its commercial one 6,520,000.00 yuan",
        "a commercial key → 409 on kind; 4 technical envelopes opened, no price read out; status technical_evaluation",
        "its chair records the result (the agency's attempt → 404); bidder4 fails the technical evaluation (its commercial key → 409 on kind); 3 commercial envelopes "
        "opened, prices 6,520,000.00, 6,398,500.00, 6,612,000.00 yuan; bidder4's stays sealed on the signed "
        "record; status evaluation",
        "a panel of 5 drawn (B02 × 4, D01 × 1)",
        "bidder2 first at 6,398,500.00 yuan",
        "budget 6,800,000.00 yuan, saving 401,500.00 yuan; contract 2026-",
        "completion before it → 409; accepted 20",
        ", published, recorded once (a second → 409)",
        "checks pass; trial balance",
        "6 public notices; budget 12,000,000.00 yuan, awarded 10,876,543.21 yuan, saving 1,123,456.79 yuan",
        "demo complete: every step did what it should",
    ):
        assert fact in shown, fact


def test_the_procurement_demo_runs_on_its_own_private_server_only() -> None:
    from ggzy import cli

    for extra in (["--seed-only"], ["--url", "http://127.0.0.1:9"]):
        result = CliRunner().invoke(cli, ["demo", "--sector", "procurement", *extra])
        assert result.exit_code == 2, result.output
        assert "--sector procurement runs on the demo's own private server" in result.output
