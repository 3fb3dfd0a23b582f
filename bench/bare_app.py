"""The yardstick: a bare Flask endpoint answering the same empty TwiML, nothing else."""

from flask import Flask, Response
from twilio.twiml.messaging_response import MessagingResponse

app = Flask(__name__)
TWIML = str(MessagingResponse())


@app.post("/sms/inbound")
def inbound() -> Response:
    """Answer like our webhook does, without checking or storing anything."""
    return Response(TWIML, mimetype="text/xml")


@app.get("/healthz")
def healthz() -> str:
    """Readiness for the benchmark's wait loop."""
    return "ok"
