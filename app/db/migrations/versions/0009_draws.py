"""draws (2026-12-02)"""

import sqlalchemy as sa

from app.db.migrations.shapes import create_table, drop_tables, moment, reference, timestamps

revision = '0009'
down_revision = '0008'


def upgrade() -> None:
    create_table('draw',
        reference('tool_id', 'tool', ondelete='CASCADE'),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('image_url', sa.String(length=512), nullable=False),
        sa.Column('tiers', sa.JSON(), nullable=False),
        moment('starts_at', nullable=True),
        moment('ends_at', nullable=True),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.Column('requires_tool', sa.String(length=64), nullable=False),
        sa.Column('passphrase', sa.String(length=64), nullable=False),
        sa.Column('one_win_per_phone', sa.Boolean(), nullable=False),
        sa.Column('claim_hours', sa.Integer(), nullable=False),
        sa.Column('referrals', sa.Boolean(), nullable=False),
        sa.Column('referral_cap', sa.Integer(), nullable=False),
        sa.Column('use_drand', sa.Boolean(), nullable=False),
        sa.Column('seed', sa.LargeBinary(length=32), nullable=False),
        sa.Column('commitment', sa.String(length=64), nullable=False),
        moment('closed_at', nullable=True),
        sa.Column('entrants_hash', sa.String(length=64), nullable=False),
        sa.Column('entrants_count', sa.Integer(), nullable=False),
        sa.Column('drand_round', sa.BigInteger(), nullable=True),
        sa.Column('drand', sa.JSON(), nullable=True),
        sa.Column('drawn_tiers', sa.JSON(), nullable=False),
        sa.Column('turn', sa.Integer(), nullable=False),
        *timestamps(),
        checks={
            'claim_hours_positive': 'claim_hours >= 1',
            'referral_cap_nonnegative': 'referral_cap >= 0',
        },
        unique=['tool_id'],
    )
    create_table('draw_entry',
        reference('draw_id', 'draw', ondelete='CASCADE'),
        sa.Column('phone_hash', sa.String(length=64), nullable=False),
        sa.Column('phone_masked', sa.String(length=32), nullable=False),
        reference('lead_id', 'lead', ondelete='SET NULL'),
        reference('visitor_id', 'visitor', ondelete='SET NULL'),
        sa.Column('code', sa.String(length=16), nullable=False),
        reference('referred_by', 'draw_entry', ondelete='SET NULL'),
        sa.Column('chances', sa.Integer(), nullable=False),
        moment('created_at'),
        checks={'chances_in_range': 'chances >= 1 AND chances <= 1000000'},
        unique=['code'],
        named_unique={'uq_draw_entry_phone': ('draw_id', 'phone_hash')},
        indexes=['lead_id'],
        named_indexes={'ix_draw_entry_referred_by': ['referred_by']},
    )
    create_table('draw_winner',
        reference('draw_id', 'draw', ondelete='CASCADE'),
        sa.Column('tier', sa.Integer(), nullable=False),
        sa.Column('rank', sa.Integer(), nullable=False),
        sa.Column('reserve', sa.Boolean(), nullable=False),
        reference('entry_id', 'draw_entry', ondelete='CASCADE'),
        sa.Column('status', sa.String(length=16), nullable=False),
        moment('won_at', nullable=True),
        moment('claim_by', nullable=True),
        moment('claimed_at', nullable=True),
        sa.Column('claim_fields', sa.JSON(), nullable=False),
        sa.Column('voucher_code', sa.String(length=32), nullable=False),
        moment('voucher_expires_at', nullable=True),
        reference('replaces', 'draw_winner', ondelete='SET NULL'),
        named_unique={'uq_draw_winner_pick': ('draw_id', 'tier', 'reserve', 'rank')},
        named_indexes={'ix_draw_winner_entry': ['entry_id']},
    )


def downgrade() -> None:
    drop_tables('draw_winner', 'draw_entry', 'draw')
