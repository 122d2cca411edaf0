"""Run an image spec through Sahara's own engine and libguestfs remote.

`sahara-image-pack` only accepts the specs shipped with installed Sahara plugins
(`sahara-image-pack PLUGIN VERSION`); this driver runs the same code path (its `ImageRemote`
and `SaharaImageValidator`) on any spec file. usage: sahara_pack.py IMAGE SPEC [--test-only]
"""
import logging
import os
import sys

from sahara.cli.image_pack import api
from sahara.plugins import images


def main():
    image, spec = sys.argv[1], os.path.abspath(sys.argv[2])
    test_only = "--test-only" in sys.argv[3:]
    logging.basicConfig(level=logging.WARNING)
    api.set_logger(logging.getLogger("sahara-image-pack"))
    validator = images.SaharaImageValidator.from_yaml(
        spec, resource_roots=[os.path.dirname(spec)])
    with api.ImageRemote(image, None) as remote:
        validator.validate(remote, test_only=test_only, image_arguments={})


if __name__ == "__main__":
    main()
