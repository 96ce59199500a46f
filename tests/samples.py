"""Small inline X12 samples shared by the validation tests."""

ISA = ("ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       "
       "*240101*1200*^*00501*000000001*0*T*:")


def tiny_837(clm05: str = "11:B:1", extra: list[str] | None = None, prefix: str = "") -> str:
    """A one-claim 837P that passes TR3 validation; `extra` segments go after the line's DTP."""
    segs = [
        "GS*HC*SENDER*RECEIVER*20240101*1200*1*X*005010X222A1",
        "ST*837*0001*005010X222A1",
        "BHT*0019*00*REF1*20240101*1200*CH",
        "NM1*41*2*SUBMITTER*****46*S123",
        "PER*IC*CONTACT*TE*5555550100",
        "NM1*40*2*RECEIVER*****46*R123",
        "HL*1**20*1",
        "NM1*85*2*BILLING*****XX*1234567893",
        "N3*1 MAIN ST",
        "N4*TOWN*NY*12345",
        "REF*EI*123456789",
        "HL*2*1*22*0",
        "SBR*P*18*******CI",
        "NM1*IL*1*DOE*JANE****MI*M123",
        "NM1*PR*2*PAYER*****PI*P123",
        f"CLM*PCN1*100***{clm05}*Y*A*Y*Y",
        "HI*ABK:R69",
        "LX*1",
        "SV1*HC:99213*100*UN*1***1",
        "DTP*472*D8*20240101",
        *(extra or []),
    ]
    segs.append(f"SE*{len(segs)}*0001")
    segs += ["GE*1*1", "IEA*1*000000001"]
    return prefix + "~\n".join([ISA, *segs]) + "~\n"
