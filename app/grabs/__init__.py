"""Limited-quantity grabs (限量抢购) and the vouchers they hand out."""
