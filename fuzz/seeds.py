#!/usr/bin/env python3
"""Writes the seed corpora of the policy_parser and rewriter targets.

rewriter: the client SQL of src/rewrite/table_tests.rs (each case's first
argument) and of ../shared/compat/*.json (when present).
policy_parser: policies/demo/*.sql, tests/differential/*.sql and the policy
texts in src/policy/tests/*.rs (string literals holding CREATE or GRANT).
"""
import glob
import hashlib
import json
import os
import re
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


def write(target, texts):
    folder = os.path.join(ROOT, 'fuzz', 'corpus', target)
    os.makedirs(folder, exist_ok=True)
    count = 0
    for text in texts:
        data = text.encode()
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


write('rewriter', rewriter_seeds())
write('policy_parser', policy_seeds())
