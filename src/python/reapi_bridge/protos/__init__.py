"""Generated protobuf and gRPC stubs for the REAPI v2, ByteStream and Remote Workers APIs.

Sources live in proto/ at the repository root; regenerate with
``PYTHONPATH=src/python python -m reapi_bridge.protos.generate``.
"""
