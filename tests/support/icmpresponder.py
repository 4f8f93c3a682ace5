"""Answers one ICMP echo request in N on a raw socket: a peer with exact, repeatable packet loss.

Run inside a network namespace whose kernel ignores echo requests (``net.ipv4.icmp_echo_ignore_all=1``):
``python -m tests.support.icmpresponder 2``. Prints ``ready`` once listening.
"""

import socket
import struct
import sys

ECHO_REQUEST, ECHO_REPLY = 8, 0


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def main() -> None:
    every = int(sys.argv[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    print("ready", flush=True)
    seen = 0
    while True:
        packet, (source, _) = sock.recvfrom(65535)
        header_length = (packet[0] & 0x0F) * 4
        icmp = packet[header_length:]
        if len(icmp) < 8 or icmp[0] != ECHO_REQUEST:
            continue
        seen += 1
        if seen % every:
            continue
        reply = bytes([ECHO_REPLY, 0, 0, 0]) + icmp[4:]
        reply = reply[:2] + struct.pack("!H", checksum(reply)) + reply[4:]
        sock.sendto(reply, (source, 0))


if __name__ == "__main__":
    main()
