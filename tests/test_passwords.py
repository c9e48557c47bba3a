"""Passwords are kept as argon2id hashes at the library's recommended strength: the service's own parameters, which
the rest of the suite swaps for cheap ones (tests/conftest.py), seen from a process of its own."""

from __future__ import annotations

import subprocess
import sys

import argon2

from tests.helpers import PASSWORD


def test_the_service_hashes_passwords_with_argon2id_at_the_recommended_strength() -> None:
    made = subprocess.run(
        [sys.executable, "-c", f"from campaigns.passwords import hash_password; print(hash_password({PASSWORD!r}))"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    password_hash = made.stdout.strip()

    parameters = argon2.extract_parameters(password_hash)
    assert parameters == argon2.profiles.RFC_9106_LOW_MEMORY
    assert parameters.type is argon2.Type.ID and parameters.memory_cost == 64 * 1024 and parameters.time_cost == 3
    assert argon2.PasswordHasher().verify(password_hash, PASSWORD)


def test_the_suite_s_cheap_hashes_still_check_the_password() -> None:
    from campaigns.passwords import hash_password

    cheap = hash_password(PASSWORD)

    assert argon2.extract_parameters(cheap).memory_cost < argon2.profiles.RFC_9106_LOW_MEMORY.memory_cost
    assert argon2.PasswordHasher().verify(cheap, PASSWORD)
    assert argon2.PasswordHasher().check_needs_rehash(cheap), "the service would hash it again at its own strength"
