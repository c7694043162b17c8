"""Prints template.yaml as the CloudFormation JSON that `sam deploy` would create, translated offline by
the AWS SAM translator (the library the SAM transform runs), so tests can check the resources SAM makes
(aliases, permissions, event source mappings, schedules) and not only the lines of the YAML.

Usage: synth_template.py [template.yaml]  (region us-east-1; parameters take their defaults)
"""

import json
import logging
import os
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# The managed policies SAM may attach by name; the translator asks IAM for their ARNs unless told.
MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for name, path in [
        ("AWSLambdaBasicExecutionRole", "service-role/"),
        ("AWSXrayWriteOnlyAccess", ""),
        ("AWSLambdaDynamoDBExecutionRole", "service-role/"),
        ("AWSLambdaSQSQueueExecutionRole", "service-role/"),
        ("AWSLambdaRole", "service-role/"),
    ]
}


class _Policies:
    def load(self):
        return MANAGED_POLICIES


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    # `sam build` replaces a local CodeUri with the uploaded artifact; the translator wants an S3 location.
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = "s3://qchat-artifacts/function.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # The translator logs notes about its own feature toggles; only errors matter here.
    logging.disable(logging.WARNING)
    try:
        out = transform(template, {}, _Policies())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"template.yaml: {cause.message}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
