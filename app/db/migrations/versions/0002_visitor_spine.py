"""visitor spine (2026-11-23)"""

import sqlalchemy as sa

from app.db.migrations.shapes import create_table, drop_tables, moment, reference, timestamps

revision = '0002'
down_revision = '0001'


def upgrade() -> None:
    create_table('funnel_event',
        moment('at'),
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('tool_id', sa.BigInteger(), nullable=True),
        sa.Column('tool_version', sa.Integer(), nullable=True),
        sa.Column('visitor_id', sa.BigInteger(), nullable=True),
        sa.Column('lead_id', sa.BigInteger(), nullable=True),
        sa.Column('link_id', sa.BigInteger(), nullable=True),
        sa.Column('platform', sa.String(length=16), nullable=False),
        sa.Column('props', sa.JSON(), nullable=False),
        indexes=['at', 'lead_id', 'visitor_id'],
        named_indexes={'ix_funnel_event_tool_at': ['tool_id', 'at']},
    )
    create_table('otp_code',
        sa.Column('phone_hash', sa.String(length=64), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        moment('created_at'),
        moment('expires_at'),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('dev_code', sa.String(length=8), nullable=False),
        indexes=['expires_at', 'phone_hash'],
    )
    create_table('tool',
        sa.Column('slug', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('title', sa.String(length=128), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('current_version', sa.Integer(), nullable=True),
        sa.Column('draft', sa.JSON(), nullable=False),
        *timestamps(),
        unique=['slug'],
    )
    create_table('account',
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('platform', sa.String(length=16), nullable=False),
        reference('owner_id', 'staff_user', ondelete='SET NULL'),
        *timestamps(),
        unique=[('kind', 'name')],
        indexes=['owner_id'],
    )
    create_table('tool_version',
        reference('tool_id', 'tool', ondelete='CASCADE'),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('definition', sa.JSON(), nullable=False),
        moment('published_at'),
        sa.Column('published_by', sa.String(length=64), nullable=False),
        unique=[('tool_id', 'number')],
        indexes=['tool_id'],
    )
    create_table('tracked_link',
        sa.Column('code', sa.String(length=32), nullable=False),
        reference('account_id', 'account', ondelete='RESTRICT'),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('campaign', sa.String(length=64), nullable=False),
        sa.Column('target_slug', sa.String(length=64), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        *timestamps(),
        unique=['code'],
        indexes=['account_id'],
    )
    create_table('lead',
        sa.Column('phone_cipher', sa.String(length=255), nullable=False),
        sa.Column('phone_hash', sa.String(length=64), nullable=False),
        sa.Column('phone_masked', sa.String(length=24), nullable=False),
        reference('first_link_id', 'tracked_link', ondelete='SET NULL'),
        sa.Column('first_src', sa.String(length=64), nullable=False),
        reference('last_link_id', 'tracked_link', ondelete='SET NULL'),
        sa.Column('last_src', sa.String(length=64), nullable=False),
        sa.Column('first_platform', sa.String(length=16), nullable=False),
        sa.Column('auth_method', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        reference('owner_id', 'staff_user', ondelete='SET NULL'),
        sa.Column('needs', sa.JSON(), nullable=False),
        sa.Column('notes', sa.Text(), nullable=False),
        moment('last_seen_at', nullable=True),
        *timestamps(),
        unique=['phone_hash'],
        indexes=['first_link_id', 'owner_id'],
    )
    create_table('visitor',
        sa.Column('public_id', sa.String(length=32), nullable=False),
        sa.Column('platform', sa.String(length=16), nullable=False),
        sa.Column('user_agent', sa.String(length=255), nullable=False),
        moment('first_seen_at'),
        moment('last_seen_at'),
        reference('first_link_id', 'tracked_link', ondelete='SET NULL'),
        sa.Column('first_src', sa.String(length=64), nullable=False),
        sa.Column('first_touch', sa.JSON(), nullable=False),
        reference('last_link_id', 'tracked_link', ondelete='SET NULL'),
        sa.Column('last_src', sa.String(length=64), nullable=False),
        sa.Column('last_touch', sa.JSON(), nullable=False),
        reference('lead_id', 'lead', ondelete='SET NULL'),
        moment('authorized_at', nullable=True),
        sa.Column('auth_method', sa.String(length=16), nullable=False),
        unique=['public_id'],
        indexes=['first_link_id', 'lead_id'],
    )
    create_table('consent',
        reference('lead_id', 'lead', ondelete='CASCADE'),
        reference('visitor_id', 'visitor', ondelete='SET NULL'),
        sa.Column('purpose', sa.String(length=32), nullable=False),
        sa.Column('notice_version', sa.String(length=32), nullable=False),
        moment('granted_at'),
        sa.Column('ip', sa.String(length=64), nullable=False),
        sa.Column('user_agent', sa.String(length=255), nullable=False),
        moment('withdrawn_at', nullable=True),
        sa.Column('detail', sa.JSON(), nullable=False),
        indexes=['lead_id'],
    )


def downgrade() -> None:
    drop_tables(
        'consent', 'visitor', 'lead', 'tracked_link', 'tool_version', 'account', 'tool',
        'otp_code', 'funnel_event',
    )
