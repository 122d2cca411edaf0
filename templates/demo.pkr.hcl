# The README's demo: a real build against the project's local test cloud (Keystone, Glance, Nova
# with the fake virt driver) and one SSH test host. `scripts/demo.sh` sets both up and passes the
# variables below; the fake driver's servers have no network, so `ssh_host` names the test host.

variable "ssh_host" {
  type        = string
  default     = "10.232.200.2"
  description = "Address of the SSH test host standing in for the server."
}

variable "ssh_keypair_name" {
  type    = string
  default = "forge-demo"
}

variable "ssh_private_key_file" {
  type    = string
  default = "/tmp/forge-testhosts/keys/id_ed25519"
}

variable "motd" {
  type    = string
  default = "Built by the forge demo"
}

locals {
  stamp = formatdate("YYYYMMDD-hhmmss", timestamp())
}

source "openstack" "demo" {
  cloud = "forge-admin"

  source_image_filter {
    filters {
      name = "forge-demo-base"
      tags = ["forge-demo"]
    }
    most_recent = true
  }

  flavor               = "m1.tiny"
  ssh_username         = "root"
  ssh_host             = var.ssh_host
  ssh_keypair_name     = var.ssh_keypair_name
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "1m"
  boot_timeout         = "5m"
  image_timeout        = "5m"
  build_timeout        = "15m"

  image_name       = "forge-demo-${local.stamp}"
  image_tags       = ["forge-demo-built"]
  image_visibility = "private"
  image_properties = {
    os_distro = "debian"
    built_by  = "forge"
  }
}

build {
  name    = "demo"
  sources = [source.openstack.demo]

  provisioner "validators" {
    spec      = "specs/demo/image.yaml"
    arguments = { motd = var.motd }
  }

  provisioner "shell" {
    inline = ["hello --version | head -n 1"]
  }

  post-processor "manifest" {
    output = "demo-manifest.json"
  }
}
