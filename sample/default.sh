#!/bin/sh
echo "hello from default"
