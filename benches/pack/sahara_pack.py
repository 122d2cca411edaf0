"""Run an image spec through Sahara's own engine and libguestfs remote.

`sahara-image-pack` only accepts the specs shipped with installed Sahara plugins
(`sahara-image-pack PLUGIN VERSION`); this driver runs the same code path (its `ImageRemote`
and `SaharaImageValidator`) on any spec file. usage: sahara_pack.py IMAGE SPEC [--test-only]
"""
import logging
import os
import sys
import warnings

import sahara
from sahara.cli.image_pack import api
from sahara.plugins import images


def sahara_relative(path):
    """Sahara reads specs and scripts through pkg_resources relative to its own package
    directory, which turns an absolute path into a subdirectory of it: pass a relative one."""
    return os.path.relpath(os.path.abspath(path), os.path.dirname(sahara.__file__))


def main():
    image, spec = sys.argv[1], sys.argv[2]
    test_only = "--test-only" in sys.argv[3:]
    warnings.simplefilter("ignore")  # pkg_resources frowns on ".." in resource paths
    logging.basicConfig(level=logging.WARNING)
    api.set_logger(logging.getLogger("sahara-image-pack"))
    # Sahara's family table has no "debian" (only ubuntu): its package validator raises KeyError
    # on the Debian test image (forge fixes this, validator-spec.md fix 12). Add the one entry.
    images.SaharaImageValidatorBase._DISTRO_FAMILES.setdefault("debian", "debian")
    validator = images.SaharaImageValidator.from_yaml(
        sahara_relative(spec),
        resource_roots=[sahara_relative(os.path.dirname(os.path.abspath(spec)))])
    with api.ImageRemote(image, None) as remote:
        validator.validate(remote, test_only=test_only, image_arguments={})


if __name__ == "__main__":
    main()
