"""Sans-I/O session core of the Parley wire protocol (docs/protocol.md).

Bytes and ``now`` go in; events and bytes come out. Nothing here awaits, reads a
clock or touches a socket: the async shell in ``server/`` feeds it.
"""
