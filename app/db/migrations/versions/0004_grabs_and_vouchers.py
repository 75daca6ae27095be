"""grabs and vouchers (2026-11-23)"""

import sqlalchemy as sa

from app.db.migrations.shapes import create_table, drop_tables, moment, reference, timestamps

revision = '0004'
down_revision = '0003'


def upgrade() -> None:
    create_table('grab',
        reference('tool_id', 'tool', ondelete='CASCADE'),
        sa.Column('offer', sa.Text(), nullable=False),
        sa.Column('image_url', sa.String(length=512), nullable=False),
        sa.Column('initial_stock', sa.Integer(), nullable=False),
        sa.Column('stock', sa.Integer(), nullable=False),
        sa.Column('per_phone_limit', sa.Integer(), nullable=False),
        moment('starts_at', nullable=True),
        moment('ends_at', nullable=True),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.Column('voucher_prefix', sa.String(length=8), nullable=False),
        sa.Column('voucher_valid_days', sa.Integer(), nullable=False),
        sa.Column('voucher_where', sa.Text(), nullable=False),
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
        sa.Column('phone_hash', sa.String(length=64), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        reference('lead_id', 'lead', ondelete='SET NULL'),
        reference('visitor_id', 'visitor', ondelete='SET NULL'),
        sa.Column('idempotency_key', sa.String(length=64), nullable=True),
        moment('claimed_at'),
        sa.Column('code', sa.String(length=32), nullable=False),
        moment('expires_at'),
        sa.Column('status', sa.String(length=16), nullable=False),
        moment('redeemed_at', nullable=True),
        reference('redeemed_by', 'staff_user', ondelete='SET NULL'),
        sa.Column('redeemed_store', sa.String(length=64), nullable=False),
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
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        reference('staff_id', 'staff_user', ondelete='SET NULL'),
        sa.Column('store', sa.String(length=64), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=False),
        moment('at'),
        indexes=['at', 'claim_id', 'staff_id'],
    )


def downgrade() -> None:
    drop_tables('voucher_audit', 'grab_claim', 'grab')
