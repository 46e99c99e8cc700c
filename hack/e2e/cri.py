#!/usr/bin/python3
"""hack/e2e/cri.py — a minimal CRI (runtime.v1) client for the containerd suite.

It does what kubelet does for one pod, with nothing but Debian's python3-grpcio:
the few request messages it needs are encoded by hand (protobuf wire format;
field numbers from k8s.io/cri-api runtime/v1), and only the response fields the
suite reads are decoded.

    cri.py SOCK version
    cri.py SOCK runp POD.json                 -> sandbox id
    cri.py SOCK create SANDBOX POD.json CTR.json -> container id
    cri.py SOCK start|stop|rm CONTAINER
    cri.py SOCK status CONTAINER              -> CREATED|RUNNING|EXITED|UNKNOWN
    cri.py SOCK podstatus SANDBOX             -> READY|NOTREADY
    cri.py SOCK exec CONTAINER CMD...         -> its stdout; exits with its status
    cri.py SOCK stopp|rmp SANDBOX

POD.json: {"name", "uid", "namespace", "handler", "cgroup_parent",
           "log_directory", "annotations": {}, "labels": {}}
CTR.json: {"name", "image", "command": [], "args": [], "log_path",
           "annotations": {}}
"""
import json
import sys

import grpc

SERVICE = "/runtime.v1.RuntimeService/"


# --- protobuf wire format ------------------------------------------------------
def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def f_int(field, n):
    return _varint(field << 3 | 0) + _varint(n)


def f_map(field, mapping):
    return b"".join(f_bytes(field, f_bytes(1, k) + f_bytes(2, v)) for k, v in sorted(mapping.items()))


def decode(data):
    """-> {field: [values]}; varints as int, length-delimited as bytes."""
    out, i = {}, 0
    while i < len(data):
        key, i = _read_varint(data, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _read_varint(data, i)
        elif wt == 2:
            n, i = _read_varint(data, i)
            val, i = data[i:i + n], i + n
        elif wt == 1:
            val, i = data[i:i + 8], i + 8
        elif wt == 5:
            val, i = data[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        out.setdefault(field, []).append(val)
    return out


def _read_varint(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def first(msg, field, default=b""):
    return msg.get(field, [default])[0]


# --- messages --------------------------------------------------------------------
def pod_config(p):
    metadata = f_bytes(1, p["name"]) + f_bytes(2, p["uid"]) + f_bytes(3, p["namespace"])
    # LinuxPodSandboxConfig{cgroup_parent=1, security_context=2{namespace_options=1}}
    ns_options = b""  # network/pid/ipc = POD (0): the defaults
    linux = f_bytes(1, p.get("cgroup_parent", "")) + f_bytes(2, f_bytes(1, ns_options))
    return (f_bytes(1, metadata) + f_bytes(2, p.get("hostname", p["name"]))
            + f_bytes(3, p["log_directory"])
            + f_map(6, p.get("labels", {})) + f_map(7, p.get("annotations", {}))
            + f_bytes(8, linux))


def container_config(c):
    msg = f_bytes(1, f_bytes(1, c["name"])) + f_bytes(2, f_bytes(1, c["image"]))
    msg += b"".join(f_bytes(3, a) for a in c.get("command", []))
    msg += b"".join(f_bytes(4, a) for a in c.get("args", []))
    msg += f_map(10, c.get("annotations", {}))
    msg += f_bytes(11, c["log_path"])
    return msg


# --- calls -------------------------------------------------------------------------
def call(channel, method, request, timeout=60):
    rpc = channel.unary_unary(SERVICE + method,
                              request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
    return decode(rpc(request, timeout=timeout))


def load(path):
    with open(path) as f:
        return json.load(f)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    sock, cmd, args = argv[1], argv[2], argv[3:]
    ch = grpc.insecure_channel("unix://" + sock)
    try:
        if cmd == "version":
            r = call(ch, "Version", f_bytes(1, "v1"))
            print(first(r, 2).decode(), first(r, 3).decode(), first(r, 4).decode())
        elif cmd == "runp":
            p = load(args[0])
            r = call(ch, "RunPodSandbox", f_bytes(1, pod_config(p)) + f_bytes(2, p["handler"]), timeout=120)
            print(first(r, 1).decode())
        elif cmd == "create":
            sandbox, p, c = args[0], load(args[1]), load(args[2])
            req = f_bytes(1, sandbox) + f_bytes(2, container_config(c)) + f_bytes(3, pod_config(p))
            print(first(call(ch, "CreateContainer", req, timeout=120), 1).decode())
        elif cmd == "start":
            call(ch, "StartContainer", f_bytes(1, args[0]))
        elif cmd == "stop":
            call(ch, "StopContainer", f_bytes(1, args[0]) + f_int(2, int(args[1]) if len(args) > 1 else 0))
        elif cmd == "rm":
            call(ch, "RemoveContainer", f_bytes(1, args[0]))
        elif cmd == "status":
            st = decode(first(call(ch, "ContainerStatus", f_bytes(1, args[0])), 1))
            names = {0: "CREATED", 1: "RUNNING", 2: "EXITED", 3: "UNKNOWN"}
            print(names.get(first(st, 3, 0), "?"), first(st, 7, 0))
        elif cmd == "podstatus":
            st = decode(first(call(ch, "PodSandboxStatus", f_bytes(1, args[0])), 1))
            print({0: "READY", 1: "NOTREADY"}.get(first(st, 3, 0), "?"))
        elif cmd == "exec":
            req = f_bytes(1, args[0]) + b"".join(f_bytes(2, a) for a in args[1:]) + f_int(3, 30)
            r = call(ch, "ExecSync", req)
            sys.stdout.write(first(r, 1).decode(errors="replace"))
            sys.stderr.write(first(r, 2).decode(errors="replace"))
            return first(r, 3, 0)
        elif cmd == "stopp":
            call(ch, "StopPodSandbox", f_bytes(1, args[0]), timeout=120)
        elif cmd == "rmp":
            call(ch, "RemovePodSandbox", f_bytes(1, args[0]), timeout=120)
        else:
            print("unknown command " + cmd, file=sys.stderr)
            return 2
    except grpc.RpcError as e:
        print("cri %s: %s: %s" % (cmd, e.code().name, e.details()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
