"""SMS one-time-code delivery: one adapter per gateway, each with a configurable endpoint so
tests point it at a fake gateway on 127.0.0.1 that speaks the real protocol.

    base.py       what every provider shares: the result, the protocol, the guarded POST,
                  scrubbing gateway messages before they are logged
    console.py    development: logs the code, sends nothing
    aliyun.py     Dysmsapi SendSms 2017-05-25, RPC signature HMAC-SHA1
    tencent.py    SMS SendSms 2021-01-11, TC3-HMAC-SHA256
    providers.py  the provider LEADKIT_SMS_PROVIDER names, and its processor for the notice
"""
