"""No names, member ids or birth dates in anything but the data outputs: messages, reports, 999s, results."""

import json

from conftest import FIXTURES, fixture_files, phi_values

from edi_pipeline.core.errors import EdiError
from edi_pipeline.pipeline.ingest import ingest_file
from edi_pipeline.scrub.scrubber import scrub_file
from edi_pipeline.store.store import Store
from edi_pipeline.validate.validator import validate_file


def test_messages_reports_and_acks_carry_no_phi(tmp_path):
    phi = phi_values()
    assert len(phi) > 50
    store = Store(tmp_path / "s.db")
    texts = []
    for path in fixture_files():
        try:
            texts.append(json.dumps(scrub_file(path, tmp_path / "o.837", tmp_path / "r.837", store).report()))
        except EdiError as exc:
            texts.append(str(exc))
        result = validate_file(path)
        texts += [str(i) for i in result.issues] + [a.ack_text for a in result.acks]
        texts.append(json.dumps(ingest_file(path, store).to_dict()))
    blob = "\n".join(texts)
    assert "TPI-UNITS" in blob and "IK5*" in blob  # the outputs were really produced
    assert not [v for v in phi if v in blob]
    assert (FIXTURES / "837p-clean.837").exists()
