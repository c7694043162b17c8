#!/usr/bin/env python3
"""Prints the newest link of a kind found in the local mail outbox (.qchat/mail/*.eml), decoded as a mail
reader would decode it: `python3 infra/mail_link.py verify-email` or `python3 infra/mail_link.py reset-password`.
For trying qchat locally without a mail client; the standard library only."""

import argparse
import email
import email.policy
import glob
import os
import re
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["verify-email", "reset-password"], help="which link")
    parser.add_argument("--mail-dir", default=os.path.join(".qchat", "mail"), help="the mail outbox folder")
    args = parser.parse_args()
    pattern = re.compile(r"https?://\S+/" + re.escape(args.kind) + r"/[A-Za-z0-9_-]{43}")
    newest = None
    # The file names start with the send time, so name order is time order.
    for path in sorted(glob.glob(os.path.join(args.mail_dir, "*.eml"))):
        with open(path, "rb") as f:
            message = email.message_from_binary_file(f, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        found = pattern.findall(body.get_content() if body else "")
        if found:
            newest = found[-1]
    if newest is None:
        print(f"no {args.kind} link in {args.mail_dir} yet (notices go out within 2 seconds)", file=sys.stderr)
        return 1
    print(newest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
