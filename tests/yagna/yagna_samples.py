"""Canned daemon answers, shaped like yagna 0.17.6 sends them (yagna-protocol.md).

Each function returns fresh JSON so a test may change it freely.
"""

API_URL = "http://127.0.0.1:7465"
APP_KEY = "s3cret-app-key-d0-not-leak-9f8e7d"
NODE = "0x" + "a1" * 20
PROVIDER = "0x" + "b2" * 20
TS = "2025-10-04T12:00:00.123456789Z"
PLATFORM = "erc20-hoodi-tglm"
IMAGE_HASH = "9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"
IMAGE_URL = "http://registry.golem.network/download/9a3b5d67.gvmi"

MARKET = API_URL + "/market-api/v1"
ACTIVITY = API_URL + "/activity-api/v1"
PAYMENT = API_URL + "/payment-api/v1"
GSB = API_URL + "/gsb-api/v1"


def offer_properties():
    return {
        "golem.node.id.name": "provider-1",
        "golem.runtime.name": "vm",
        "golem.inf.mem.gib": 8.0,
        "golem.inf.storage.gib": 40.0,
        "golem.inf.cpu.threads": 4,
        "golem.com.pricing.model": "linear",
        "golem.com.pricing.model.linear.coeffs": [0.0001, 0.0002, 0.01],
        "golem.com.usage.vector": ["golem.usage.duration_sec", "golem.usage.cpu_sec"],
        f"golem.com.payment.platform.{PLATFORM}.address": PROVIDER,
        "golem.com.payment.platform.erc20-polygon-glm.address": PROVIDER,
        "golem.com.payment.debit-notes.accept-timeout?": 240,
        "golem.srv.comp.expiration": 1759579200000,
    }


def proposal(proposal_id="P0", state="Initial", prev=None):
    data = {"properties": offer_properties(), "constraints": "(&(golem.srv.comp.expiration>0))",
            "proposalId": proposal_id, "issuerId": PROVIDER, "state": state, "timestamp": TS}
    if prev is not None:
        data["prevProposalId"] = prev
    return data


def proposal_event(proposal_id="P0", state="Initial", prev=None):
    return {"eventType": "ProposalEvent", "eventDate": TS, "proposal": proposal(proposal_id, state, prev)}


def proposal_rejected_event(proposal_id="D1"):
    return {"eventType": "ProposalRejectedEvent", "eventDate": TS, "proposalId": proposal_id,
            "reason": {"message": "No capacity available", "golem.proposal.code": "NoCapacity"}}


def agreement(state="Approved"):
    return {
        "agreementId": "AG",
        "demand": {"properties": {"golem.node.debug.subnet": "public"}, "constraints": "()",
                   "demandId": "DM", "requestorId": NODE, "timestamp": TS},
        "offer": {"properties": offer_properties(), "constraints": "()", "offerId": "OF",
                  "providerId": PROVIDER, "timestamp": TS},
        "validTo": "2025-10-04T13:00:00Z", "approvedDate": TS, "state": state, "timestamp": TS,
        "appSessionId": "session-1",
    }


def agreement_event(kind="Approved"):
    data = {"eventType": f"Agreement{kind}Event", "eventDate": TS, "agreementId": "AG"}
    if kind == "Terminated":
        data.update(terminator="Provider", signature="sig", reason={"message": "done"})
    elif kind in ("Rejected", "Cancelled"):
        data["reason"] = {"message": "No capacity available"}
    return data


def exe_result(index, result="Ok", finished=False, stdout=None, stderr=None, message=None):
    return {"index": index, "eventDate": TS, "result": result, "stdout": stdout, "stderr": stderr,
            "message": message, "isBatchFinished": finished}


def allocation(total="5", spent="0", remaining="5"):
    return {"allocationId": "AL", "address": NODE, "paymentPlatform": PLATFORM, "totalAmount": total,
            "spentAmount": spent, "remainingAmount": remaining, "timestamp": TS,
            "timeout": "2025-10-04T14:00:00Z", "createdTs": TS, "updatedTs": TS, "makeDeposit": False}


def decoration():
    return {"properties": [{"key": f"golem.com.payment.platform.{PLATFORM}.address", "value": NODE},
                           {"key": "golem.com.payment.protocol.version", "value": "3"}],
            "constraints": [f"(golem.com.payment.platform.{PLATFORM}.address=*)",
                            "(golem.com.payment.protocol.version>1)"]}


def debit_note(amount="0.000123456789012345678"):
    return {"debitNoteId": "DN", "issuerId": PROVIDER, "recipientId": NODE, "payeeAddr": PROVIDER,
            "payerAddr": NODE, "paymentPlatform": PLATFORM, "timestamp": TS, "agreementId": "AG",
            "activityId": "AC", "totalAmountDue": amount,
            "paymentDueDate": "2025-10-05T12:00:00Z", "status": "RECEIVED"}


def invoice(amount="0.0100315"):
    return {"invoiceId": "IN", "issuerId": PROVIDER, "recipientId": NODE, "payeeAddr": PROVIDER,
            "payerAddr": NODE, "paymentPlatform": PLATFORM, "timestamp": TS, "agreementId": "AG",
            "activityIds": ["AC"], "amount": amount, "paymentDueDate": "2025-10-05T12:00:00Z",
            "status": "RECEIVED"}


def sse_frame(data, event="runtime", frame_id=1):
    import json
    return f"event: {event}\ndata: {json.dumps(data)}\nid: {frame_id}\n\n"


def runtime_event(index, kind):
    # snake_case batch_id and a naive UTC timestamp, as the daemon sends (protocol §3.4).
    return {"batch_id": "BA", "index": index, "timestamp": "2025-10-04T12:00:01.5", "kind": kind}
