"""Envelopes: grouping into ISA/GS/ST and control-number and count checks."""

from edi_pipeline.x12.envelope import EnvelopeReader, Transaction

ISA = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260101*1200*^*00501*000000001*0*T*:~"


def env(body: str):
    r = EnvelopeReader((ISA + body).encode(), "t.837")
    items = list(r)
    return items, r.issues


def test_counts_ok():
    items, issues = env("GS*HC*S*R*20260101*1200*7*X*005010X222A1~ST*837*0001~BHT*0019~SE*3*0001~GE*1*7~IEA*1*000000001~")
    assert [type(i).__name__ for i in items] == ["EnvelopeSegment", "EnvelopeSegment", "Transaction",
                                                 "EnvelopeSegment", "EnvelopeSegment"]
    assert not issues


def test_wrong_counts_and_controls_are_reported_with_positions():
    items, issues = env("GS*HC*S*R*20260101*1200*7*X*005010X222A1~ST*837*0001~BHT*0019~SE*9*0002~GE*2*8~IEA*3*000000009~")
    codes = {i.code: i for i in issues}
    assert {"IK5-4", "IK5-3", "ENV-GE01", "ENV-GE02", "ENV-IEA01", "ENV-IEA02"} <= set(codes)
    se = codes["IK5-4"]
    assert se.pos.segment_index == 5 and se.pos.st_position == 3 and se.pos.element == "SE01"


def test_truncated_file():
    items, issues = env("GS*HC*S*R*20260101*1200*7*X*005010X222A1~ST*837*0001~BHT*0019~CLM*1")
    tx = [i for i in items if isinstance(i, Transaction)]
    assert len(tx) == 1 and not tx[0].complete
    assert {"ENV-SE-MISSING", "ENV-GE-MISSING", "ENV-IEA-MISSING"} <= {i.code for i in issues}


def test_mixed_837_and_835_in_one_file():
    items, issues = env("GS*HC*S*R*20260101*1200*1*X*005010X222A1~ST*837*0001~SE*2*0001~GE*1*1~"
                        "GS*HP*S*R*20260101*1200*2*X*005010X221A1~ST*835*0002~SE*2*0002~GE*1*2~IEA*2*000000001~")
    tx = [i for i in items if isinstance(i, Transaction)]
    assert [t.set_id for t in tx] == ["837", "835"]
    assert [t.version for t in tx] == ["005010X222A1", "005010X221A1"]
    assert not issues


def test_segment_outside_envelope():
    items, issues = env("XYZ*1~GS*HC*S*R*20260101*1200*7*X*005010X222A1~GE*0*7~IEA*1*000000001~")
    assert issues.has("ENV-OUTSIDE")
