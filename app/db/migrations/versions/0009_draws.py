"""draws (2026-12-02)"""

from app.db.migrations.shapes import big_integer, binary, create_table, drop_tables, flag, integer, json, moment, reference, string, text, timestamps

revision = '0009'
down_revision = '0008'


def upgrade() -> None:
    create_table('draw',
        reference('tool_id', 'tool', ondelete='CASCADE'),
        text('description'),
        string('image_url', 512),
        json('tiers'),
        moment('starts_at', nullable=True),
        moment('ends_at', nullable=True),
        string('mode', 16),
        string('requires_tool', 64),
        string('passphrase', 64),
        flag('one_win_per_phone'),
        integer('claim_hours'),
        flag('referrals'),
        integer('referral_cap'),
        flag('use_drand'),
        binary('seed', 32),
        string('commitment', 64),
        moment('closed_at', nullable=True),
        string('entrants_hash', 64),
        integer('entrants_count'),
        big_integer('drand_round', nullable=True),
        json('drand', nullable=True),
        json('drawn_tiers'),
        integer('turn'),
        *timestamps(),
        checks={
            'claim_hours_positive': 'claim_hours >= 1',
            'referral_cap_nonnegative': 'referral_cap >= 0',
        },
        unique=['tool_id'],
    )
    create_table('draw_entry',
        reference('draw_id', 'draw', ondelete='CASCADE'),
        string('phone_hash', 64),
        string('phone_masked', 32),
        reference('lead_id', 'lead', ondelete='SET NULL'),
        reference('visitor_id', 'visitor', ondelete='SET NULL'),
        string('code', 16),
        reference('referred_by', 'draw_entry', ondelete='SET NULL'),
        integer('chances'),
        moment('created_at'),
        checks={'chances_in_range': 'chances >= 1 AND chances <= 1000000'},
        unique=['code'],
        named_unique={'uq_draw_entry_phone': ('draw_id', 'phone_hash')},
        indexes=['lead_id'],
        named_indexes={'ix_draw_entry_referred_by': ['referred_by']},
    )
    create_table('draw_winner',
        reference('draw_id', 'draw', ondelete='CASCADE'),
        integer('tier'),
        integer('rank'),
        flag('reserve'),
        reference('entry_id', 'draw_entry', ondelete='CASCADE'),
        string('status', 16),
        moment('won_at', nullable=True),
        moment('claim_by', nullable=True),
        moment('claimed_at', nullable=True),
        json('claim_fields'),
        string('voucher_code', 32),
        moment('voucher_expires_at', nullable=True),
        reference('replaces', 'draw_winner', ondelete='SET NULL'),
        named_unique={'uq_draw_winner_pick': ('draw_id', 'tier', 'reserve', 'rank')},
        named_indexes={'ix_draw_winner_entry': ['entry_id']},
    )


def downgrade() -> None:
    drop_tables('draw_winner', 'draw_entry', 'draw')
