"""``splitnas-edge``: run an exported split network (``nas export``) for real, one part per process or device.

Torch-free: the parts run under ONNX Runtime, payloads are coded with ``spaces.codecs`` over numpy.
``framing`` is the wire format, ``transports`` the registry of links (tcp, udp), ``parts`` loads a part,
``server`` serves one, ``runner`` runs the head and times each request, ``report`` summarizes the timings
beside the prediction (DESIGN.md sections 3 and 8).
"""
