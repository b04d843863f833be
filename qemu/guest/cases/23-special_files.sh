# c23_special_files: FIFOs and symlinks where klpctl expects regular files:
# refused, never followed, nothing loaded.
# scenarios: main

# FIFOs and symlinks where klpctl expects its own regular files, or a
# bundle: refused at once, nothing followed, nothing loaded. And with
# standard output closed, nothing lands in the lock file.
run_case() {
    local d=/tmp/fifodir before
    rm -rf "$d"
    mkdir -p "$d"
    mkfifo "$d/x.klp"
    cp "$B/basic.klp" "$d/"
    kl apply "$d/x.klp"
    expect_rc 1 "a FIFO as the bundle"
    expect_says "not a regular file"
    kl apply --dir "$d"
    expect_rc 0 "apply --dir past a FIFO"
    expect_says "x.klp.*not a regular file"
    expect_applied klp_basic
    mkfifo /etc/klpctl/keys.d/evil.pub
    kl verify "$B/basic.klp"
    expect_rc 0 "verify with a FIFO in the keyring"
    expect_says "ignoring key file evil.pub"
    rm /etc/klpctl/keys.d/evil.pub
    # A record that is a symlink to a FIFO is damaged: never trusted, never
    # blocked on. The patch is live, so the apply is a conflict.
    mkfifo /tmp/rec-fifo
    rm /run/klpctl/patches/klp_basic
    ln -s /tmp/rec-fifo /run/klpctl/patches/klp_basic
    kl apply "$B/basic.klp"
    expect_rc 5 "apply over a damaged record"
    expect_says "without a klpctl record"
    kl disable klp_basic
    expect_rc 0
    [ -e /run/klpctl/patches/klp_basic ] && klp_fail "disable kept the damaged record"
    rm -f /tmp/rec-fifo
    before=$(modules)
    # The lock: a symlink is not followed, a FIFO is refused.
    rm -f /run/klpctl/lock
    ln -s /tmp/lock-target /run/klpctl/lock
    kl apply "$B/basic.klp"
    expect_rc 1 "a symlink as the lock"
    expect_says "lock.*ELOOP"
    [ -e /tmp/lock-target ] && klp_fail "the lock symlink was followed"
    rm -f /run/klpctl/lock
    mkfifo /run/klpctl/lock
    kl apply "$B/basic.klp"
    expect_rc 1 "a FIFO as the lock"
    expect_says "lock.*not a regular file"
    expect_modules_unchanged "$before"
    rm -f /run/klpctl/lock
    # Standard output closed: the lock would get fd 1 and the JSON with it.
    timeout -s KILL 60 klpctl apply --json "$B/basic.klp" >&-
    [ $? = 0 ] || klp_fail "apply with stdout closed failed"
    [ -s /run/klpctl/lock ] && klp_fail "output landed in the lock file: $(cat /run/klpctl/lock)"
    expect_applied klp_basic
    kl disable klp_basic
    expect_rc 0
    rm -rf "$d"
    expect_no_livepatch
}
