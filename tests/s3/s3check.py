#!/usr/bin/env python3
"""boto3 as an independent S3 client for the s3sink/s3src tests.

  s3check.py ENDPOINT mkbucket BUCKET
  s3check.py ENDPOINT get BUCKET KEY FILE     writes the object to FILE
  s3check.py ENDPOINT head BUCKET KEY         JSON: size, etag, content-type,
                                              metadata; {} when absent
  s3check.py ENDPOINT uploads BUCKET          number of unfinished multipart
                                              uploads (ListMultipartUploads)
"""

import json
import sys

import boto3
import botocore.exceptions


def main(argv):
    endpoint, command, args = argv[1], argv[2], argv[3:]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    if command == "mkbucket":
        s3.create_bucket(Bucket=args[0])
    elif command == "get":
        body = s3.get_object(Bucket=args[0], Key=args[1])["Body"].read()
        with open(args[2], "wb") as f:
            f.write(body)
    elif command == "head":
        try:
            h = s3.head_object(Bucket=args[0], Key=args[1])
        except botocore.exceptions.ClientError:
            print("{}")
            return 0
        print(json.dumps({"size": h["ContentLength"], "etag": h["ETag"],
                          "content-type": h.get("ContentType", ""),
                          "metadata": h.get("Metadata", {})}))
    elif command == "uploads":
        r = s3.list_multipart_uploads(Bucket=args[0])
        print(len(r.get("Uploads", [])))
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
