# The smallest useful template: a base image by name, a flavor, how to log in, what to call
# the result.
source "openstack" "minimal" {
  source_image_name = "debian-12"
  flavor            = "m1.small"
  ssh_username      = "debian"
  image_name        = "minimal-${uuidv4()}"
}

build {
  sources = [source.openstack.minimal]
}
