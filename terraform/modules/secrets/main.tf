# The two secrets of infra/aws/src/resources.rs `secrets`, created without a value:
# - `<prefix>/admin-key`: the api function generates the first admin key on its first cold start
#   and stores it here (a valid key carries a CRC-32 checksum Terraform cannot compute), so the
#   key never enters Terraform state.
# - `<prefix>/runner-snapshot-key`: the first runner to snapshot a session generates the
#   AES-256-GCM key and stores it here.

locals {
  secrets = {
    "admin-key"           = "First admin API key of the openwa gateway (written by the api function on first start)."
    "runner-snapshot-key" = "AES-256-GCM key encrypting openwa auth snapshots (written by the first runner)."
  }
}

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:Neither value can be rotated by a Lambda rotator: a new admin key is made through the API (then the old one revoked), and replacing the snapshot key would make every stored snapshot undecryptable.
  #checkov:skip=CKV_AWS_149:Encrypted with the AWS managed key by default; set var.kms_key_arn to use a customer managed key.
  for_each = local.secrets

  name                    = "${var.prefix}/${each.key}"
  description             = each.value
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days

  tags = var.tags
}
