"""Matching a determination to the tenant's programs, and the referrals recorded from it."""
