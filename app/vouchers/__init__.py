"""Vouchers: staff look up, redeem and undo the codes visitors won (issue 5)."""
