"""The planner sandbox reads the SFTP drop as the vendor does: catalogue before sales, oldest file
first, never a file still being written, each file once; a file with an unsupported column is not
processed; rows naming a variant it does not know are reported, not imported."""
import types

import pytest

from integrations.sandbox.inventory_planner_feeds import import_feeds, imported
from tests.integrations.flows.planner_feeds.sftp_server import LoopbackSftpServer

VARIANTS = ("VARIANT_ID,SKU,TITLE,BARCODE,PRODUCT_ID,PRICE,CREATED_AT,UPDATED_AT,REMOVED\r\n"
            "TEE-1,TEE-1,Tee,,TEE-1,20.00,2026-11-01 00:00:00,2026-11-01 00:00:00,false\r\n")
SALES = ("ORDER_ID,ID,VARIANT_ID,WAREHOUSE,CURRENCY,QUANTITY,PRICE,CREATED_AT,REMOVED,UPDATED_AT\r\n"
         "o1:l1,o1,TEE-1,MAIN,GBP,2,20.00,2026-11-20 09:00:00,false,2026-11-20 09:00:00\r\n"
         "o1:l2,o1,GHOST-9,MAIN,GBP,1,5.00,2026-11-20 09:00:00,false,2026-11-20 09:00:00\r\n"
         "o1:r1,o1,TEE-1,MAIN,GBP,-1,20.00,2026-11-21 09:00:00,false,2026-11-21 09:00:00\r\n")


@pytest.fixture
def drop(tmp_path):
    root = tmp_path / "drop"
    for sub in ("inbound/variants", "inbound/sales_orders"):
        (root / sub).mkdir(parents=True)
    server = LoopbackSftpServer(str(root))
    yield server, root
    server.shutdown()


def body(server):
    return {"sftp": {"host": "127.0.0.1", "port": server.port, "username": server.username,
                     "password": server.password, "remote_dir": "/inbound", "host_key": server.known_host}}


def test_it_reports_unknown_variants_and_keeps_returns_negative(drop):
    server, root = drop
    (root / "inbound/variants/variants_1.csv").write_text(VARIANTS)
    (root / "inbound/sales_orders/sales_1.csv").write_text(SALES)
    (root / "inbound/sales_orders/.sales_2.csv.part").write_text(SALES.replace("o1", "o2"))
    app = types.SimpleNamespace()
    result = import_feeds(app, body(server))["sftp"]
    assert [f["kind"] for f in result["files"]] == ["variants", "sales_orders"]  # the .part file is not read
    assert result["sales_orders"]["unknown_skus"] == ["GHOST-9"] and result["sales_orders"]["rows"] == 2
    quantities = sorted(r["QUANTITY"] for r in imported(app)["advanced"]["sales_orders"])
    assert quantities == ["-1", "2"]
    assert import_feeds(app, body(server))["sftp"]["files"] == []  # each file once


def test_a_file_with_an_unsupported_column_is_not_processed(drop):
    server, root = drop
    (root / "inbound/variants/variants_1.csv").write_text(VARIANTS.replace("REMOVED\r\n", "REMOVED,COLOUR\r\n", 1))
    app = types.SimpleNamespace()
    result = import_feeds(app, body(server))["sftp"]
    assert result["variants"]["errors"][0]["unsupported"] == ["COLOUR"]
    assert imported(app)["advanced"]["variants"] == []


def test_a_drop_with_another_host_key_is_not_read(drop):
    import paramiko

    server, _ = drop
    other = paramiko.ECDSAKey.generate()
    conf = body(server)
    conf["sftp"]["host_key"] = f"{other.get_name()} {other.get_base64()}"
    assert "host key" in import_feeds(types.SimpleNamespace(), conf)["sftp"]["error"]
