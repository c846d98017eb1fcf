#!/bin/sh
# Install the system packages the integration tests need (a real Dovecot for
# IMAP + LMTP). Idempotent: does nothing, quickly, when they are present.
set -eu

need=""
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need="dovecot-imapd dovecot-lmtpd"
if [ -z "$need" ]; then
    # dovecot present: make sure the LMTP and IMAP parts are too
    [ -x /usr/lib/dovecot/lmtp ] || need="$need dovecot-lmtpd"
    [ -x /usr/lib/dovecot/imap ] || need="$need dovecot-imapd"
fi
# headless Chromium renders the weekly digest's HTML in tests
command -v chromium >/dev/null 2>&1 || need="$need chromium"
# systemd-analyze validates systemd/saygoodbye.service
command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
[ -z "$need" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_test_deps: please install Dovecot 2.3 (imapd + lmtpd):$need" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "install_test_deps: installing$need" >&2
$sudo apt-get update -qq
# the package scripts try to start the system Dovecot; tests run their own
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $need
