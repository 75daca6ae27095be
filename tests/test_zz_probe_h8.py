from tests.test_vouchers import *  # noqa

def test_probe(staff):
    voucher = make_voucher(staff)
    staff.raw.cookies.clear()
    csrf = staff.csrf("/staff/login")
    for path in ("/staff/vouchers/lookup", "/staff/vouchers/redeem", f"/staff/vouchers/{voucher['id']}/undo"):
        for h in ({}, {"HX-Request": "true"}):
            r = staff.raw.post(path, data={"_csrf_token": csrf, "code": voucher["code"], "store": STORE}, headers=h, follow_redirects=False)
            print(path, h, r.status_code, r.headers.get("location"), r.headers.get("hx-redirect"), r.text[:100].replace("\n"," "))
            r = staff.raw.post(path, data={"code": voucher["code"], "store": STORE}, headers=h, follow_redirects=False)
            print(" nocsrf", r.status_code)
