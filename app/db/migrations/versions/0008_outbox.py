"""outbox: every outgoing message (SMS now, webhooks later), sent by the outbox sender (2026-12-02)"""

import sqlalchemy as sa

from app.db.migrations.shapes import create_table, drop_tables, moment

revision = '0008'
down_revision = '0007'


def upgrade() -> None:
    create_table('outbox_message',
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        moment('next_attempt_at'),
        moment('locked_until', nullable=True),
        sa.Column('locked_by', sa.String(length=64), nullable=False),
        sa.Column('last_error', sa.String(length=200), nullable=False),
        moment('created_at'),
        moment('sent_at', nullable=True),
        unique=['key'],
        named_indexes={
            'ix_outbox_message_created_at': ['created_at'],
            'ix_outbox_message_status_next_attempt_at': ['status', 'next_attempt_at'],
        },
    )


def downgrade() -> None:
    drop_tables('outbox_message')
