#!/bin/bash
# LocalStack init hook (ready stage): reports what openwa's bootstrap service will find. The
# resources themselves are created by `openwa bootstrap` (the `bootstrap` service in
# docker-compose.yml) from the same definitions the code and Terraform use, so there is one
# source of truth rather than a second list of awslocal commands here.
echo "openwa: LocalStack is ready; the bootstrap service creates the openwa resources"
