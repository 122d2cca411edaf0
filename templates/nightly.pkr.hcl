# Nightly Debian 12 image: boot the newest tagged base image, bring it to the state the
# image spec describes, snapshot it, publish it with a dated name.
#
#   forge validate templates/nightly.pkr.hcl
#   forge build templates/nightly.pkr.hcl -var cloud=mycloud

variable "cloud" {
  type        = string
  default     = "devstack"
  description = "Entry of clouds.yaml to build in."
}

variable "flavor" {
  type    = string
  default = "m1.small"
}

variable "network" {
  type        = string
  default     = "private"
  description = "Network the build server is attached to."
}

variable "base_tags" {
  type        = list(string)
  default     = ["debian", "bookworm"]
  description = "Every one of these tags must be on the base image."
}

variable "visibility" {
  type    = string
  default = "private"

  validation {
    condition     = var.visibility == "private" || var.visibility == "shared" || var.visibility == "community" || var.visibility == "public"
    error_message = "The visibility must be one of private, shared, community, public."
  }
}

variable "motd" {
  type        = string
  default     = "Debian 12 nightly, built by forge"
  description = "Message of the day baked into the image."
}

locals {
  stamp      = formatdate("YYYYMMDD-hhmm", timestamp())
  image_name = "debian-12-nightly-${local.stamp}"
}

source "openstack" "debian-nightly" {
  cloud = var.cloud

  source_image_filter {
    filters {
      name       = "debian-12-genericcloud-amd64"
      tags       = var.base_tags
      visibility = "public"
    }
    most_recent = true
  }

  flavor          = var.flavor
  networks        = [var.network]
  security_groups = ["default"]
  config_drive    = true

  ssh_username = "debian"
  ssh_timeout  = "5m"
  boot_timeout = "10m"

  image_name       = local.image_name
  image_visibility = var.visibility
  image_tags       = ["debian", "bookworm", "nightly"]
  image_properties = {
    os_distro  = "debian"
    os_version = "12"
    build_date = local.stamp
  }
  image_min_disk = 4
  image_timeout  = "30m"
  build_timeout  = "1h"
}

build {
  name    = "debian-nightly"
  sources = [source.openstack.debian-nightly]

  provisioner "shell" {
    inline = ["sudo apt-get update"]
  }

  provisioner "validators" {
    spec = "specs/debian/image.yaml"
    arguments = {
      timezone    = "Etc/UTC"
      motd        = var.motd
      extra_tools = "no"
    }
  }

  provisioner "validators" {
    # Prove the reconciled server now passes without changes.
    spec      = "specs/debian/image.yaml"
    test_only = true
    arguments = {
      motd = var.motd
    }
  }

  post-processor "manifest" {
    output = "manifest-${local.stamp}.json"
  }
}
