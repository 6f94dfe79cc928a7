#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets.

wire_frontend and startup_scram: a few valid messages and exchanges
(startup, SSLRequest, CancelRequest, Query, Parse/Bind/Execute/Sync,
SASLInitialResponse, ErrorResponse; an honest SCRAM client, with an
extension, with channel binding, a tampered proof, an unknown user).

rewriter: the client SQL of src/rewrite/table_tests.rs (each case's first
argument), of src/rewrite/write_tests.rs and of ../shared/compat/*.json
(when present).
policy_parser: policies/demo/*.sql, tests/differential/*.sql and the policy
texts in src/policy/tests/*.rs (string literals holding CREATE or GRANT).
"""
import glob
import hashlib
import json
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LITERAL = r'"((?:[^"\\]|\\.)*)"'


def unescape(text):
    text = re.sub(r'\\\n\s*', '', text)
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == '\\' and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({'n': '\n', 't': '\t', 'r': '\r', '0': '\0', '"': '"',
                        '\\': '\\', "'": "'"}.get(nxt, '\\' + nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return ''.join(out)


def raw_literals(source):
    """Rust r"..." and r#"..."# literals."""
    return [m.group(2) for m in re.finditer(r'r(#*)"(.*?)"\1', source, re.S)]


def msg(tag, body):
    return tag + struct.pack('>i', len(body) + 4) + body


def startup(params, version=196608):
    return struct.pack('>i', version) + b''.join(
        k + b'\0' + v + b'\0' for k, v in params) + b'\0'


def wire_seeds():
    body = startup([(b'user', b'alice'), (b'database', b'demo'),
                    (b'application_name', b'psql'), (b'client_encoding', b'UTF8')])
    return body, [
        struct.pack('>i', len(body) + 4) + body,
        struct.pack('>ii', 8, 80877103),
        struct.pack('>iiii', 16, 80877102, 1234, 5678),
        msg(b'Q', b'SELECT 1\0') + msg(b'X', b''),
        msg(b'P', b's1\0SELECT $1\0' + struct.pack('>hI', 1, 23))
        + msg(b'B', b'\0s1\0\0\0\0\1\0\0\0\0011\0\0')
        + msg(b'E', b'\0\0\0\0\0') + msg(b'S', b''),
        msg(b'p', b'SCRAM-SHA-256\0' + struct.pack('>i', 32)
            + b'n,,n=,r=rOprNGfwEbeRWgbNEkqO%hvY'),
        msg(b'E', b'SERROR\0C42501\0Mpermission denied\0\0')
        + msg(b'S', b'client_encoding\0UTF8\0'),
    ]


def scram_seeds(body):
    """Flag byte, then startup body, mechanism, client-first, client-final."""
    sep = b'\xfe'
    first = b'n,,n=,r=rOprNGfwEbeRWgbNEkqO%hvY'
    plain = body + sep + b'SCRAM-SHA-256' + sep
    other = startup([(b'user', b'bob'), (b'options', b'-c search_path=public')])
    return [
        bytes([4]) + plain + first + sep,
        bytes([4]) + plain + first + sep + b',x=ext',
        bytes([5]) + other + sep + b'SCRAM-SHA-256-PLUS' + sep
        + b'p=tls-server-end-point,,n=,r=abcdefgh' + sep,
        bytes([4]) + plain + b'y,,n=,r=abcdefgh' + sep,
        bytes([4 | 8 | 0x30]) + plain + first + sep,
        bytes([6]) + plain + first + sep,
        bytes([0]) + plain + first + sep + b'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYxxxx,'
        b'p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    ]


def write(target, texts):
    folder = os.path.join(ROOT, 'fuzz', 'corpus', target)
    os.makedirs(folder, exist_ok=True)
    count = 0
    for text in texts:
        data = text if isinstance(text, bytes) else text.encode()
        if not data.strip():
            continue
        name = 'seed_' + hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(data)
        count += 1
    print(f'{target}: {count} seeds', file=sys.stderr)


def rewriter_seeds():
    source = open(os.path.join(ROOT, 'src/rewrite/table_tests.rs')).read()
    sqls = [unescape(m.group(1)) for m in
            re.finditer(r'\b(?:c|p|gap)\(\s*(?:&\[[^\]]*\],\s*)?' + LITERAL, source)]
    # The writes: each allowed case's SQL (`a("…"`) and each refused one
    # (`("…", "<sqlstate>")` in REFUSED).
    writes = open(os.path.join(ROOT, 'src/rewrite/write_tests.rs')).read()
    sqls += [unescape(m.group(1)) for m in re.finditer(r'\ba\(\s*' + LITERAL, writes)]
    sqls += [unescape(m.group(1)) for m in
             re.finditer(r'\(\s*' + LITERAL + r',\s*"[0-9A-Z]{5}"', writes)]
    for path in glob.glob(os.path.join(ROOT, '..', 'shared', 'compat', '*.json')):
        for entry in json.load(open(path)):
            if isinstance(entry, dict) and isinstance(entry.get('sql'), str):
                sqls.append(entry['sql'])
    return sqls


def policy_seeds():
    texts = []
    for pattern in ('policies/demo/*.sql', 'tests/differential/*.sql'):
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            texts.append(open(path).read())
    for path in sorted(glob.glob(os.path.join(ROOT, 'src/policy/tests/*.rs'))):
        source = open(path).read()
        found = [unescape(m.group(1)) for m in re.finditer(LITERAL, source)]
        found += raw_literals(source)
        texts += [t for t in found if re.search(r'\b(CREATE|GRANT)\b', t, re.I)]
    return texts


STARTUP, WIRE = wire_seeds()
write('wire_frontend', WIRE)
write('startup_scram', scram_seeds(STARTUP))
write('rewriter', rewriter_seeds())
write('policy_parser', policy_seeds())
