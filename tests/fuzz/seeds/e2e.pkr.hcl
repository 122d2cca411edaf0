# Seed for the fuzzer: the shape tests/build/mod.rs writes for the end-to-end build, plus an
# image-file source, a sensitive variable, locals and template directives.
variable "greeting" {
  type    = string
  default = "hello"
}

variable "password" {
  type      = string
  default   = "s3cret"
  sensitive = true
}

variable "sizes" {
  type    = list(number)
  default = [1, 2, 3]
}

locals {
  stamp = formatdate("YYYYMMDD-hhmm", timestamp())
  name  = "forge-${local.stamp}-${uuidv4()}"
  home  = env("HOME")
  motd  = <<-EOT
    built %{ if var.greeting != "" }with ${var.greeting}%{ else }quietly%{ endif }
    EOT
}

source "openstack" "e2e" {
  cloud = "forge-admin"
  source_image_filter {
    filters {
      name = "base"
      tags = ["t1", "t2"]
      visibility = "private"
    }
    most_recent = true
  }
  flavor           = "m1.tiny"
  ssh_username     = "root"
  ssh_host         = "10.231.1.2"
  ssh_port         = 22
  ssh_timeout      = "30s"
  boot_timeout     = "2m"
  image_timeout    = "2m"
  image_name       = local.name
  image_tags       = ["e2e", "e2e-built"]
  image_properties = {
    os_distro = "debian"
    built_by  = "forge-e2e"
  }
  image_visibility = "private"
  image_min_disk   = 2
}

source "image-file" "disk" {
  path   = "images/base.raw"
  format = "raw"
}

build {
  name    = "e2e"
  sources = ["source.openstack.e2e", source.image-file.disk]
  provisioner "validators" {
    spec      = "specs/debian/image.yaml"
    arguments = { greeting = var.greeting, secret = var.password }
  }
  provisioner "shell" {
    inline = ["echo ${var.greeting} > /root/built-by-forge"]
  }
  post-processor "manifest" {
    output = "manifest.json"
  }
}
