"""grabs and vouchers (2026-11-23)"""

from app.db.migrations.shapes import create_table, drop_tables, integer, moment, reference, string, text, timestamps

revision = '0004'
down_revision = '0003'


def upgrade() -> None:
    create_table('grab',
        reference('tool_id', 'tool', ondelete='CASCADE'),
        text('offer'),
        string('image_url', 512),
        integer('initial_stock'),
        integer('stock'),
        integer('per_phone_limit'),
        moment('starts_at', nullable=True),
        moment('ends_at', nullable=True),
        string('mode', 16),
        string('voucher_prefix', 8),
        integer('voucher_valid_days'),
        text('voucher_where'),
        *timestamps(),
        checks={
            'initial_stock_nonnegative': 'initial_stock >= 0',
            'per_phone_limit_positive': 'per_phone_limit >= 1',
            'stock_nonnegative': 'stock >= 0',
        },
        unique=['tool_id'],
    )
    create_table('grab_claim',
        reference('grab_id', 'grab', ondelete='CASCADE'),
        string('phone_hash', 64),
        integer('n'),
        reference('lead_id', 'lead', ondelete='SET NULL'),
        reference('visitor_id', 'visitor', ondelete='SET NULL'),
        string('idempotency_key', 64, nullable=True),
        moment('claimed_at'),
        string('code', 32),
        moment('expires_at'),
        string('status', 16),
        moment('redeemed_at', nullable=True),
        reference('redeemed_by', 'staff_user', ondelete='SET NULL'),
        string('redeemed_store', 64),
        checks={'n_positive': 'n >= 1'},
        unique=['code'],
        named_unique={'uq_grab_claim_phone_n': ('grab_id', 'phone_hash', 'n')},
        indexes=['lead_id', 'visitor_id'],
        named_indexes={
            'ix_grab_claim_grab_claimed': ['grab_id', 'claimed_at'],
            'ix_grab_claim_idempotency': ['grab_id', 'idempotency_key'],
        },
    )
    create_table('voucher_audit',
        reference('claim_id', 'grab_claim', ondelete='SET NULL'),
        string('code', 32),
        string('action', 16),
        string('reason', 32),
        reference('staff_id', 'staff_user', ondelete='SET NULL'),
        string('store', 64),
        string('ip', 64),
        moment('at'),
        indexes=['at', 'claim_id', 'staff_id'],
    )


def downgrade() -> None:
    drop_tables('voucher_audit', 'grab_claim', 'grab')
