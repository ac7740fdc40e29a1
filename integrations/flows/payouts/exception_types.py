"""Exception types of the payouts flow: each declared once with its team, runbook and retry."""
from datetime import timedelta

from exceptions_queue import registry
from exceptions_queue.registry import ExceptionType, Severity, Team

RETRY_IMPORT = "integrations.flows.payouts.retry_payouts_import_exception"

PAYOUTS_IMPORT_FAILED = registry.register(ExceptionType(
    code="payouts_import_failed", team=Team.FINANCE, severity=Severity.MEDIUM, system="storefront",
    title="Payouts of {connection} could not be imported",
    runbook=(
        "What happened: reading the storefront's payouts and balance transactions failed (the message says "
        "why: no Shopify Payments account, a scope the app lacks, or an answer Ledgerline could not read). "
        "Nothing was half-imported: what was read before the failure is kept, and a re-import changes "
        "nothing already stored.\n"
        "Check: the connection's health and granted scopes (read_shopify_payments_payouts).\n"
        "Fix: grant the scope or correct the connection, then retry.\n"
        "Escalate: the finance systems owner."
    ),
    retry_handler=RETRY_IMPORT, sla=timedelta(days=1),
))
SETTLEMENT_FILE_REJECTED = registry.register(ExceptionType(
    code="settlement_file_rejected", team=Team.FINANCE, severity=Severity.MEDIUM, system="storefront",
    title="Settlement file {name} was not imported",
    runbook=(
        "What happened: a PSP settlement report (uploaded, or dropped in the watched folder) has a row "
        "Ledgerline cannot read; the message names the row and the column. Nothing of the file was imported.\n"
        "Check: that the file is the PSP's own export in a supported layout (Stripe itemized payout "
        "reconciliation, Adyen settlement details) and not edited by hand.\n"
        "Fix: export the report again from the PSP and upload it; then resolve this.\n"
        "Escalate: the finance systems owner."
    ),
    sla=timedelta(days=2),
))
PAYOUT_JOURNAL_NOT_POSTED = registry.register(ExceptionType(
    code="payout_journal_not_posted", team=Team.FINANCE, severity=Severity.HIGH, system="erp",
    title="Approved payout {payout} was not posted to the ERP",
    runbook=(
        "What happened: finance approved payout {payout} ({connection}), but the ERP did not book its journal "
        "(bank deposit, fees, clearing and any accepted variance): it was down after several tries, or it "
        "refused the journal (the error names why: an unknown account, a closed period, unbalanced lines). "
        "The approval is kept and the reconciliation stays locked; nothing was booked twice.\n"
        "Check: the last error, and the connection's journal accounts (payout_bank_account, "
        "payout_clearing_account, payout_fee_account, payout_variance_account in its settings).\n"
        "Fix: correct the account or reopen the period in the ERP, then press Retry: the journal is booked "
        "once (the ERP keeps it unique by {reference}) and the payout shows as posted.\n"
        "Escalate: the finance systems owner."
    ),
    retry_handler="integrations.flows.payouts.approval.retry_payout_post", sla=timedelta(hours=8),
))
