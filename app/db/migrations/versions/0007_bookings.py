"""bookings: a visitor's request for a visit through a tool's call to action (2026-12-02)"""

import sqlalchemy as sa
from alembic import op
import advanced_alchemy.types

revision = '0007'
down_revision = '0006'


def upgrade() -> None:
    op.create_table('booking',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lead_id', sa.BigInteger(), nullable=False),
    sa.Column('tool_id', sa.BigInteger(), nullable=False),
    sa.Column('tool_version', sa.Integer(), nullable=False),
    sa.Column('visitor_id', sa.BigInteger(), nullable=True),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('slot_day', sa.Date(), nullable=False),
    sa.Column('slot_part', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=800), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('booked_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('contacted_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('contacted_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_booking_lead_id_lead'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tool_id'], ['tool.id'], name=op.f('fk_booking_tool_id_tool'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['visitor_id'], ['visitor.id'], name=op.f('fk_booking_visitor_id_visitor'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking')),
    sa.UniqueConstraint('lead_id', 'tool_id', name=op.f('uq_booking_lead_id'))
    )
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.create_index('ix_booking_state_booked_at', ['state', 'booked_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_booking_tool_id'), ['tool_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_booking_tool_id'))
        batch_op.drop_index('ix_booking_state_booked_at')
    op.drop_table('booking')
